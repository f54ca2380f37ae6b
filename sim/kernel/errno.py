"""Error numbers with OpenBSD's values (sys/errno.h).

``ERESTART`` and ``EJUSTRETURN`` are kernel-internal pseudo-errors, as in BSD.
"""

EPERM = 1
ENOENT = 2
ESRCH = 3
EINTR = 4
EIO = 5
ENXIO = 6
E2BIG = 7
EBADF = 9
ENOMEM = 12
EFAULT = 14
EBUSY = 16
ENODEV = 19
EINVAL = 22
ENOTTY = 25
EPIPE = 32
EAGAIN = 35
EWOULDBLOCK = EAGAIN
EINPROGRESS = 36
EALREADY = 37
ENOTSOCK = 38
EDESTADDRREQ = 39
EMSGSIZE = 40
EPROTOTYPE = 41
ENOPROTOOPT = 42
EPROTONOSUPPORT = 43
EOPNOTSUPP = 45
EAFNOSUPPORT = 47
EADDRINUSE = 48
EADDRNOTAVAIL = 49
ENETUNREACH = 51
ECONNABORTED = 53
ECONNRESET = 54
ENOBUFS = 55
EISCONN = 56
ENOTCONN = 57
ETIMEDOUT = 60
ECONNREFUSED = 61
EHOSTUNREACH = 65
EBADMSG = 92        # OpenBSD sys/errno.h (POSIX); what KTLS returns for a bad record
ERESTART = -1
EJUSTRETURN = -2

_NAMES = {v: k for k, v in dict(globals()).items()
          if k.startswith("E") and isinstance(v, int) and k != "EWOULDBLOCK"}


def errorname(err: int) -> str:
    """``errorname(22) == "EINVAL"``; 0 is ``"OK"``."""
    if err == 0:
        return "OK"
    return _NAMES.get(err, f"E?{err}")
