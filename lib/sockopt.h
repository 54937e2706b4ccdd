/* Socket options of a program's socket, carried to its replacement.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_SOCKOPT_H
#define TFO_SOCKOPT_H

/* Sets on `to` (a fresh TCP socket of `family`, not yet connected) the
 * options the program set on `from` (SO_BINDTODEVICE, SO_MARK, TOS,
 * keepalive and TCP timeouts, TCP_NODELAY, congestion control, ...).
 * Returns how many could not be set (0: all carried); errno untouched. */
int tfo__sockopt_copy(int from, int to, int family);

#endif
