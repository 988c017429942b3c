/*
 * SPDX-License-Identifier: MIT
 *
 * A main() for the fuzz targets when libFuzzer is not there (gcc
 * builds): runs the target once on every file named on the command line
 * or found in the directories named, so the committed corpora -- and the
 * reproducers of every bug found -- are replayed by "make check".
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned runs;

static int run_file(const char *path)
{
    static uint8_t buf[1 << 20];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL) {
        perror(path);
        return 1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    runs++;
    return 0;
}

int main(int argc, char **argv)
{
    int i, err = 0;

    for (i = 1; i < argc; i++) {
        struct stat st;
        struct dirent *e;
        DIR *d;

        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            err |= run_file(argv[i]);
            continue;
        }
        d = opendir(argv[i]);
        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[4096];

            if (e->d_name[0] == '.') {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            err |= run_file(path);
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    printf("replayed %u inputs\n", runs);
    return err || runs == 0;
}
