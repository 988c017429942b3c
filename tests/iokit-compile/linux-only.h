/*
 * SPDX-License-Identifier: MIT
 *
 * Force-included (with __linux__ undefined) when check.sh compiles the
 * transport-independent code as for macOS: each Linux-only function is
 * renamed, so a call to one shows up in the object as an undefined
 * "linux_only_*" symbol, which the check refuses.  macOS has none of
 * these.
 */

#define pipe2 linux_only_pipe2
#define dup3 linux_only_dup3
#define accept4 linux_only_accept4
#define eventfd linux_only_eventfd
#define eventfd_read linux_only_eventfd_read
#define eventfd_write linux_only_eventfd_write
#define epoll_create1 linux_only_epoll_create1
#define epoll_ctl linux_only_epoll_ctl
#define epoll_wait linux_only_epoll_wait
#define memfd_create linux_only_memfd_create
#define process_vm_readv linux_only_process_vm_readv
#define process_vm_writev linux_only_process_vm_writev
#define prctl linux_only_prctl
#define signalfd linux_only_signalfd
#define timerfd_create linux_only_timerfd_create
#define recvmmsg linux_only_recvmmsg
#define sendmmsg linux_only_sendmmsg
