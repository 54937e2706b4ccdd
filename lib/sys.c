/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "sys.h"

struct tfo__sys tfo__sys = {
    .socket = socket,
    .connect = connect,
    .sendmsg = sendmsg,
    .close = close,
    .poll = poll,
    .getsockopt = getsockopt,
    .setsockopt = setsockopt,
    .fcntl = fcntl,
};
