# SPDX-License-Identifier: MIT
#
# Counted checks for the Python test scripts: "ok - WHAT" or
# "not ok - WHAT: DETAIL" per check, then "N passed, N failed", as the C
# tests' summary (tests/harness/check.h).


class Checks:
    """Counts checks; finish() prints the summary and returns the exit
    status."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def __call__(self, ok, what, detail=''):
        if ok:
            self.passed += 1
            print('ok - ' + what)
        else:
            self.failed += 1
            print('not ok - ' + what + (': ' + detail if detail else ''))
        return ok

    def finish(self):
        print('%d passed, %d failed' % (self.passed, self.failed))
        return 1 if self.failed else 0
