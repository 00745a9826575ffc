"""The in-sandbox supervisor: pid 1 of every local sandbox.

It starts the commands the local cloud asks for (already inside the sandbox's namespaces, cgroups and
rlimits, so a command costs one fork here instead of a chain of host processes), streams their output,
relays stdin and signals, and reaps every orphan. It speaks newline-delimited JSON: requests on stdin,
events on stdout. Standard library only; run by /usr/bin/python3 -I -S. Started with
`--assemble <json>` it first builds the sandbox's root filesystem, limits and capabilities itself.

Requests:
  {"op": "spawn", "id": N, "argv": [...], "env": {...}, "cwd": "/home/user", "uid": 1000, "gid": 1000, "stdin": bool,
   "pty": {"cols": C, "rows": R}}  (pty optional: the command then runs on a new pseudo-terminal)
  {"op": "stdin", "id": N, "data": "<base64>"}   (to the terminal of a pty command)
  {"op": "resize", "id": N, "cols": C, "rows": R}  (a pty command's terminal)
  {"op": "close_stdin", "id": N}
  {"op": "signal", "id": N, "signal": 9}          (to the command's whole process group)
Events:
  {"ev": "ready", "pid": 1}
  {"ev": "started", "id": N, "pid": P} | {"ev": "failed", "id": N, "error": "..."}
  {"ev": "out", "id": N, "fd": 1 | 2, "data": "<base64>"}
  {"ev": "pty", "id": N, "data": "<base64>"}      (what a pty command wrote to its terminal)
  {"ev": "exit", "id": N, "code": C} | {"ev": "exit", "id": N, "signal": S}
"""

import base64
import ctypes
import errno
import fcntl
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import time

READ_CHUNK = 65536
# After a command exits, how long its output pipes may stay open (held by a background child) before
# its exit is reported anyway.
DRAIN_GRACE_SECONDS = 0.1


# --- Assembling the sandbox (run once, as root, in the new namespaces, before serving) -------------
# Done here with direct syscalls rather than ~45 `mount`/`mkdir` processes from a shell script: that
# was most of the time it took to start a sandbox.

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7
KEPT_CAPABILITIES = (CAP_KILL, CAP_SETGID, CAP_SETUID)
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LOOP_MAJOR = 0x4C82, 0x4C0A, 7
LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO = 4, 16
# struct loop_config: fd, block_size, then struct loop_info64 (device, inode, rdevice, offset,
# sizelimit, number, encrypt_type, encrypt_key_size, flags, file_name[64], crypt_name[64],
# encrypt_key[32], init[2]), then 8 reserved words.
LOOP_CONFIG = struct.Struct("=II5Q4I64s64s32s2Q8Q")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
MAX_TERMINALS = 256
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)


def encode(value):
    return None if value is None else value.encode()


def mount(source, target, fstype=None, flags=0, data=None):
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "mount %s on %s: %s" % (source, target, os.strerror(error)))


def bind(source, target, read_only=False):
    mount(source, target, None, MS_BIND)
    if read_only:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def touch(path):
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def build_etc_layer(layer, own_files, copies):
    """Mounts at `layer` what the sandbox's /etc shows above the host's: its own files and stand-ins for
    the host's secrets (the middle layer of its /etc overlay, see `assemble`).

    The layer is a small tmpfs mounted at `layer` (a folder outside the sandbox's root, so nothing in
    the sandbox reaches it, and in this mount namespace only). It holds `own_files` (passwd, group,
    hostname, hosts: name to content), the host files `copies` names (name to host path: the egress
    proxy's certificates, too big for the command line) and an empty stand-in (same owner and mode, so `user` is refused
    where it is on the host) for every file of the host's /etc that "other" may not read, and an empty,
    opaque directory for every directory "other" may not search: shadow, gshadow, ssh host keys,
    ssl/private, service passwords. Root in a sandbox is uid 0 without capabilities, so it owns the
    host's root files; without this it reads them all. What the sandbox writes in its /etc goes to the
    overlay's upper layer, above this one: removing a stand-in there leaves a whiteout, which hides the
    host's file as well, and root in a sandbox cannot set the trusted.overlay attributes that would make
    a folder of the upper layer show a lower one elsewhere (no CAP_SYS_ADMIN).

    Why an overlay, and not empty files bind-mounted over the secrets: the host replaces such files by
    renaming a new one over them (passwd, useradd, ssh-keygen), and a rename over a mount point in
    another namespace detaches that mount, so the new secret would show through. In the overlay the
    stand-in hides the name, whatever the host does to the file under it. Why not a curated /etc: the
    host's public /etc (what any unprivileged host user reads) is what programs in the sandbox expect
    (certificates, ld.so.cache, alternatives, time zones, locales, Python's and Node's configuration),
    and a copy per sandbox would cost time and memory on every start. What this does not cover: a secret
    created under a public directory of the host's /etc after the sandbox started shows through until
    the sandbox ends.
    """
    host = os.lstat("/etc")
    mount("tmpfs", layer, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=%o,uid=%d,gid=%d" % (stat.S_IMODE(host.st_mode), host.st_uid, host.st_gid))
    for name, content in own_files.items():
        make_parents(layer, os.path.dirname(name))
        with open(os.path.join(layer, name), "w", encoding="utf-8") as own:
            own.write(content)
    for name, source in copies.items():
        make_parents(layer, os.path.dirname(name))
        shutil.copyfile(source, os.path.join(layer, name))
        os.chmod(os.path.join(layer, name), 0o644)
    own_files = {**own_files, **copies}
    for path, info in unreadable_by_others("/etc"):
        relative = os.path.relpath(path, "/etc")
        stand_in = os.path.join(layer, relative)
        if os.path.lexists(stand_in):
            continue  # One of the sandbox's own files.
        make_parents(layer, os.path.dirname(relative))
        if stat.S_ISDIR(info.st_mode):
            os.mkdir(stand_in)
            os.setxattr(stand_in, "trusted.overlay.opaque", b"y")
        else:
            touch(stand_in)
        os.chown(stand_in, info.st_uid, info.st_gid)
        os.chmod(stand_in, stat.S_IMODE(info.st_mode))
    # An overlay shows what is under the host's mounts inside /etc; containers mount resolv.conf (and
    # hosts, hostname) there, so the public files mounted there are copied into the layer (the sandbox
    # may change its copy, as it may any file of its /etc).
    for point in file_mounts_under("/etc/"):
        relative = point[len("/etc/"):]
        try:
            info = os.stat(point)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o004 and relative not in own_files:
            make_parents(layer, os.path.dirname(relative))
            shutil.copyfile(point, os.path.join(layer, relative))
            os.chown(os.path.join(layer, relative), info.st_uid, info.st_gid)
            os.chmod(os.path.join(layer, relative), stat.S_IMODE(info.st_mode))


def mount_overlay(target, lowers, layers, name):
    """Mounts at `target` a copy-on-write view of the folders `lowers` (the first on top), whose changes
    go to `<layers>/<name>/upper` on the sandbox's disk: the sandbox may write anywhere in it, the
    folders below never change, and what it writes counts against its disk's size.

    The merged folder takes its owner and mode from the upper one, so that is given the top lower
    folder's. The layers are named by file descriptors (/proc/self/fd/N), so no character of the data
    folder's path (a ',' or ':') can break the option string. redirect_dir, index and metacopy off:
    renaming a folder of a lower layer fails with EXDEV (mv then copies it), and no upper entry ever
    points at another place in the layers below.
    """
    upper = os.path.join(layers, name, "upper")
    work = os.path.join(layers, name, "work")
    # A disk copied from a snapshot has its layers already: they are kept, owner and mode as the sandbox left them.
    if not os.path.isdir(upper):
        os.makedirs(upper)
        top = os.stat(lowers[0])
        os.chown(upper, top.st_uid, top.st_gid)
        os.chmod(upper, stat.S_IMODE(top.st_mode))
    os.makedirs(work, exist_ok=True)
    fds = [os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for path in (*lowers, upper, work)]
    try:
        names = ["/proc/self/fd/%d" % fd for fd in fds]
        options = "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,index=off,metacopy=off" % (":".join(names[:-2]), names[-2], names[-1])
        mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, options)
    finally:
        for fd in fds:
            os.close(fd)


def unreadable_by_others(directory):
    """(path, lstat) of the regular files below `directory` that "other" may not read, and of the
    directories "other" may not search (not entered). Written for speed: it runs on every sandbox start."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # Removed meanwhile.
            kind = stat.S_IFMT(info.st_mode)
            if kind == stat.S_IFDIR:
                if info.st_mode & 0o005 == 0o005:
                    found.extend(unreadable_by_others(entry.path))
                else:
                    found.append((entry.path, info))
            elif kind == stat.S_IFREG and not info.st_mode & 0o004:
                found.append((entry.path, info))
    return found


def make_parents(layer, relative):
    """Makes the folders of `relative` in the layer with the owner and mode of the host's: in an overlay the
    top layer's folder gives the merged one its attributes."""
    if relative in ("", ".") or os.path.isdir(os.path.join(layer, relative)):
        return
    make_parents(layer, os.path.dirname(relative))
    try:
        host = os.lstat(os.path.join("/etc", relative))
    except FileNotFoundError:  # A folder of the sandbox's own files that the host lacks.
        host = os.lstat("/etc")
    os.mkdir(os.path.join(layer, relative))
    os.chown(os.path.join(layer, relative), host.st_uid, host.st_gid)
    os.chmod(os.path.join(layer, relative), stat.S_IMODE(host.st_mode))


def file_mounts_under(prefix):
    """Mount points of this mount namespace below `prefix` (mountinfo's field 5, octal escapes undone)."""
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        points = [line.split(b" ")[4] for line in mountinfo]
    decoded = [point.decode("unicode_escape").encode("latin-1").decode("utf-8", "replace") for point in points]
    return [point for point in decoded if point.startswith(prefix)]


def copy_sparse(source, target):
    """Copies the image file `source` to a new file `target` without filling its holes: only the data
    (about 600 KiB of a fresh 1 GiB ext4 image) is read and written."""
    reader = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    writer = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        size = os.fstat(reader).st_size
        os.ftruncate(writer, size)
        position = 0
        while position < size:
            try:
                start = os.lseek(reader, position, os.SEEK_DATA)
            except OSError as error:
                if error.errno == errno.ENXIO:
                    break  # Only a hole is left.
                raise
            end = os.lseek(reader, start, os.SEEK_HOLE)
            while start < end:
                start += os.copy_file_range(reader, writer, end - start, start, start)
            position = end
    finally:
        os.close(reader)
        os.close(writer)


def attach_disk(image, mount_point):
    """Mounts the sandbox's disk image (made by the server, see isolation/disk.ts) at `mount_point`, in
    this mount namespace only.

    The loop device is configured to detach itself when its last user goes (autoclear): once mounted,
    that is the mount, which ends with this namespace, so a killed sandbox, or one whose server was
    SIGKILLed, leaves no loop device behind and nothing mounted on the host. Direct I/O keeps the
    image's data out of the host's page cache (the filesystem above has its own cache). `nobarrier`:
    the disk is thrown away with the sandbox, so flushes buy nothing, and each one (every fsync in the
    sandbox, and the unmount when it ends) would wait for the host's journal: unmounting took 6-15 ms
    at p50 with them and 1.1-1.5 ms without, on this project's machine under load. `discard` gives the
    host back the blocks of removed files.
    """
    backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        # Another sandbox starting at the same moment can take the free device first: then try the next.
        for _ in range(64):
            number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
            path = "/dev/loop%d" % number
            if not os.path.exists(path):
                os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(LOOP_MAJOR, number))
            device = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            config = LOOP_CONFIG.pack(backing, 0, 0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO, image.encode()[:63], b"", b"", 0, 0, *([0] * 8))
            try:
                fcntl.ioctl(device, LOOP_CONFIGURE, config)
            except OSError as error:
                os.close(device)
                if error.errno == errno.EBUSY:
                    continue
                raise
            try:
                mount(path, mount_point, "ext4", MS_NOSUID | MS_NODEV, "discard,nobarrier")
            finally:
                os.close(device)
            return
        raise OSError(errno.EBUSY, "no free loop device for the sandbox's disk after 64 tries")
    finally:
        os.close(control)
        os.close(backing)


def bring_loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def drop_capabilities():
    """Keeps only what starting commands as another user and signalling them needs; no new privileges ever."""
    for capability in range(0, 64):
        if capability in KEPT_CAPABILITIES:
            continue
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: past the last one
            raise OSError(ctypes.get_errno(), "could not drop capability %d" % capability)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "could not set no_new_privs")
    kept = sum(1 << capability for capability in KEPT_CAPABILITIES)
    header = struct.pack("II", LINUX_CAPABILITY_VERSION_3, 0)
    data = struct.pack("IIIIII", kept, kept, 0, 0, 0, 0)  # effective, permitted, inheritable (x2 words)
    header_buffer = ctypes.create_string_buffer(header)
    data_buffer = ctypes.create_string_buffer(data)
    if libc.capset(header_buffer, data_buffer) != 0:
        raise OSError(ctypes.get_errno(), "could not set capabilities")


def assemble(spec):
    """Builds the sandbox's root filesystem at spec["root"], then chroots into it and drops privileges.

    The whole root is writable for the sandbox and private to it: a stack of overlays whose upper layers
    are on the sandbox's own disk (in its `layers` folder, beside `home` and `tmp`), so whatever it
    writes, wherever, stays in the sandbox, counts against its disk and goes with it. Below them:
    a skeleton of the root's folders (a small tmpfs), the host's /usr and /lib* folders, and for /etc
    the sandbox's own files over the host's /etc (see `build_etc_layer`). One overlay per host folder
    because an overlay's layer is one filesystem: mounts inside a lower folder do not show through.
    """
    root = spec["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    copy_sparse(spec["disk"]["template"], spec["disk"]["image"])
    attach_disk(spec["disk"]["image"], spec["disk"]["mountPoint"])
    layers = os.path.join(spec["disk"]["mountPoint"], "layers")
    os.makedirs(layers, 0o700, exist_ok=True)
    # The skeleton, lowest layer of the root's overlay, which is then mounted over it at the same place.
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
    host_folders = ["usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), os.path.join(root, name))
        elif os.path.isdir(host):
            host_folders.append(name)
    for path in (*host_folders, "etc", "proc", "dev", "home/user", "tmp", "root", "run", "var/tmp", "opt/tradeswarm/kernels", "opt/tradeswarm/guest"):
        os.makedirs(os.path.join(root, path), exist_ok=True)
    os.chmod(os.path.join(root, "root"), 0o700)
    os.chmod(os.path.join(root, "var/tmp"), 0o1777)
    mount_overlay(root, [root], layers, "root")
    for name in host_folders:
        mount_overlay(os.path.join(root, name), ["/" + name], layers, name)
    build_etc_layer(spec["etc"], spec["etcFiles"], spec["etcCopies"])
    mount_overlay(os.path.join(root, "etc"), [spec["etc"], "/etc"], layers, "etc")
    proc = os.path.join(root, "proc")
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # What would let root in a sandbox change the host, made read-only or hidden (as Docker does).
    for entry in PROC_READ_ONLY:
        path = os.path.join(proc, entry)
        if os.path.exists(path):
            bind(path, path, read_only=True)
    if os.path.exists(os.path.join(proc, "kcore")):
        bind("/dev/null", os.path.join(proc, "kcore"))
    # This boot's own id, not the host kernel's (see SandboxDirs.bootId in isolation/launcher.ts).
    bind(spec["bootId"], os.path.join(proc, "sys/kernel/random/boot_id"), read_only=True)
    dev = os.path.join(root, "dev")
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=1m")
    for device in DEVICES:
        touch(os.path.join(dev, device))
        bind("/dev/" + device, os.path.join(dev, device))
    # The sandbox's own pseudo-terminals (for PTY sessions and whatever in it opens /dev/ptmx): a new
    # devpts instance, so it sees no terminal of the host or of another sandbox, with at most
    # MAX_TERMINALS of them, so it cannot use up the terminals the kernel gives all sandboxes.
    os.mkdir(os.path.join(dev, "pts"))
    mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,max=%d" % MAX_TERMINALS)
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.mkdir(os.path.join(dev, "shm"))
    mount("tmpfs", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    # The POSIX message queues of this sandbox's IPC namespace, listed so that they can be removed.
    os.mkdir(os.path.join(dev, "mqueue"))
    mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, link))
    bind(os.path.join(spec["disk"]["mountPoint"], "home"), os.path.join(root, "home/user"))
    bind(os.path.join(spec["disk"]["mountPoint"], "tmp"), os.path.join(root, "tmp"))
    bind(spec["kernels"], os.path.join(root, "opt/tradeswarm/kernels"), read_only=True)
    bind(spec["guest"], os.path.join(root, "opt/tradeswarm/guest"), read_only=True)
    listen_for_sudo(os.path.join(root, SUDO_SOCKET.lstrip("/")))
    socket.sethostname(spec["hostname"])
    if spec.get("privateNetwork"):
        bring_loopback_up()
    resource.setrlimit(resource.RLIMIT_NOFILE, (spec["maxOpenFiles"], spec["maxOpenFiles"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["maxFileSizeBytes"], spec["maxFileSizeBytes"]))
    os.chroot(root)
    os.chdir("/")
    drop_capabilities()


# --- sudo ----------------------------------------------------------------------------------------
# The sandbox's processes run with no_new_privs, so no setuid program (a real sudo) can raise them. As
# on E2B, `user` may run commands as root with sudo: /opt/tradeswarm/guest/sudo sends its command and
# its stdin, stdout and stderr over this socket, and the supervisor starts it as it starts a command
# the local cloud asks for as root. It gets exactly the power of the sandbox's own root, no more.
SUDO_SOCKET = "/run/tradeswarm-sudo.sock"
SUDO_USERS = {0: 0, 1000: 1000}  # uid: gid of the sandbox's root and user
# What sudo on a terminal passes on to its command (see guest/bin/sudo).
SUDO_RELAYED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
sudo_listener = None


def listen_for_sudo(path):
    global sudo_listener
    sudo_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A disk copied from a snapshot has the socket of the sandbox it was taken of, which nothing serves.
    if os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode):
        os.unlink(path)
    sudo_listener.bind(path)
    os.chmod(path, 0o666)
    sudo_listener.listen(16)


# --- Pseudo-terminals (PTY sessions) -------------------------------------------------------------
WINSIZE = struct.Struct("HHHH")  # struct winsize: rows, cols, x pixels, y pixels

libc.setfsuid.argtypes = (ctypes.c_int,)
libc.setfsgid.argtypes = (ctypes.c_int,)


def open_terminal(uid, gid, cols, rows):
    """A new pseudo-terminal of the sandbox's devpts, (master, slave), its slave owned by uid:gid with mode
    0620 as login gives a user's terminal, and the given size. devpts gives a new terminal the filesystem
    ids of whoever opens /dev/ptmx, so it is opened with those of the user (the supervisor keeps no
    CAP_CHOWN to chown it afterwards)."""
    libc.setfsgid(gid)
    libc.setfsuid(uid)
    try:
        if libc.setfsuid(-1) != uid or libc.setfsgid(-1) != gid:
            raise OSError(errno.EPERM, "could not take the ids %d:%d to open a terminal" % (uid, gid))
        master, slave = os.openpty()
    finally:
        libc.setfsuid(0)
        libc.setfsgid(0)
    try:
        resize_terminal(slave, cols, rows)
    except OSError:
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def resize_terminal(fd, cols, rows):
    """Sets the terminal's size; the kernel sends SIGWINCH to its foreground process group."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, WINSIZE.pack(rows, cols, 0, 0))


def take_terminal():
    """Run in the child, a new session's leader, before exec: its stdin (the slave) becomes its
    controlling terminal, so that job control, ^C and SIGHUP work as in a terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def session_process_groups(session):
    """The process groups of every process in `session` (a shell in a terminal puts each job in its own)."""
    groups = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.getsid(int(name)) == session:
                groups.add(os.getpgid(int(name)))
        except OSError:
            continue  # Ended meanwhile.
    return groups


class Command:
    __slots__ = ("id", "popen", "pid", "open_streams", "status", "exited_at", "terminal", "on_terminal", "pending_input")

    def __init__(self, command_id, popen, terminal=None):
        self.id = command_id
        self.popen = popen
        self.pid = popen.pid
        # The master side of a pty command's terminal (None once every slave is closed), read for its output.
        self.terminal = terminal
        self.on_terminal = terminal is not None
        self.open_streams = 1 if self.on_terminal else 2
        # Input for the terminal that it has not taken yet (the master is non-blocking).
        self.pending_input = bytearray()
        self.status = None
        self.exited_at = None


class Supervisor:
    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.commands = {}
        self.by_pid = {}
        self.out = sys.stdout.buffer
        self.inbox = b""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        # A handler (not SIG_IGN) so that children are not auto-reaped and waitpid sees them.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # No other handlers: as pid 1 of its namespace, the kernel already shields it from signals it
        # does not handle, and an ignored disposition would be inherited by every command.
        self.selector.register(wake_read, selectors.EVENT_READ, ("wake", None))
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, ("control", None))
        # pid of a process started for sudo: the connection to tell its exit, and its Popen.
        self.sudo_children = {}
        # pid of a process started for sudo from a terminal: the session of that terminal.
        self.sudo_sessions = {}
        if sudo_listener is not None:
            sudo_listener.setblocking(False)
            self.selector.register(sudo_listener.fileno(), selectors.EVENT_READ, ("sudo", None))

    def emit(self, event):
        self.out.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        self.out.flush()

    def run(self):
        self.emit({"ev": "ready", "pid": os.getpid()})
        while True:
            timeout = self.next_deadline()
            for key, events in self.selector.select(timeout):
                kind, payload = key.data
                if kind == "wake":
                    try:
                        os.read(key.fd, 4096)
                    except BlockingIOError:
                        pass
                elif kind == "control":
                    self.read_control(key.fd)
                elif kind == "sudo":
                    self.accept_sudo()
                elif kind == "sudo-caller":
                    self.read_sudo_caller(key.fd, payload)
                elif kind == "terminal":
                    self.serve_terminal(payload, events)
                else:
                    self.read_output(key.fd, kind, payload)
            self.reap()
            self.finish_drained()

    def next_deadline(self):
        pending = [c.exited_at + DRAIN_GRACE_SECONDS for c in self.commands.values() if c.exited_at is not None]
        if not pending:
            return None
        return max(0.0, min(pending) - time.monotonic())

    def read_control(self, fd):
        data = os.read(fd, READ_CHUNK)
        if not data:
            # The local cloud is gone: end the sandbox (pid 1 exiting kills every process in it).
            sys.exit(0)
        self.inbox += data
        while b"\n" in self.inbox:
            line, self.inbox = self.inbox.split(b"\n", 1)
            if line.strip():
                self.handle(json.loads(line))

    def handle(self, request):
        op = request.get("op")
        command = self.commands.get(request.get("id"))
        if op == "spawn":
            self.spawn(request)
        elif command is None:
            return
        elif op == "stdin" and command.on_terminal:
            command.pending_input += base64.b64decode(request.get("data", ""))
            self.write_terminal(command)
        elif op == "resize":
            if command.terminal is not None:
                try:
                    resize_terminal(command.terminal, int(request["cols"]), int(request["rows"]))
                except (OSError, KeyError, ValueError, struct.error):
                    pass  # The terminal is gone, or the local cloud sent a size it already refuses.
        elif op == "stdin":
            stdin = command.popen.stdin
            if stdin is not None and not stdin.closed:
                try:
                    stdin.write(base64.b64decode(request.get("data", "")))
                    stdin.flush()
                except (BrokenPipeError, OSError):
                    pass
        elif op == "close_stdin":
            stdin = command.popen.stdin
            if stdin is not None and not stdin.closed:
                try:
                    stdin.close()
                except OSError:
                    pass
        elif op == "signal":
            groups = {command.pid}
            if command.on_terminal:
                groups |= session_process_groups(command.pid)
                groups |= {pid for pid, session in self.sudo_sessions.items() if session == command.pid}
            for group in groups:
                try:
                    os.killpg(group, int(request.get("signal", signal.SIGKILL)))
                except ProcessLookupError:
                    pass

    def spawn(self, request):
        command_id = request["id"]
        if request.get("pty") is not None:
            self.spawn_on_terminal(request)
            return
        try:
            popen = subprocess.Popen(
                request["argv"],
                stdin=subprocess.PIPE if request.get("stdin") else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=request.get("cwd") or "/",
                env=request.get("env") or {},
                user=request.get("uid", 1000),
                group=request.get("gid", 1000),
                extra_groups=[],
                process_group=0,
                close_fds=True,
                restore_signals=True,
            )
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            self.emit({"ev": "failed", "id": command_id, "error": str(error)})
            return
        command = Command(command_id, popen)
        self.commands[command_id] = command
        self.by_pid[popen.pid] = command
        for stream, fd_number in ((popen.stdout, 1), (popen.stderr, 2)):
            os.set_blocking(stream.fileno(), False)
            self.selector.register(stream.fileno(), selectors.EVENT_READ, (command_id, (stream, fd_number)))
        self.emit({"ev": "started", "id": command_id, "pid": popen.pid})

    def spawn_on_terminal(self, request):
        """Starts a command on a new pseudo-terminal: its stdin, stdout and stderr are the slave, in a new
        session whose controlling terminal it is; its output is read from the master."""
        command_id = request["id"]
        uid, gid = request.get("uid", 1000), request.get("gid", 1000)
        master = None
        try:
            master, slave = open_terminal(uid, gid, int(request["pty"]["cols"]), int(request["pty"]["rows"]))
            try:
                popen = subprocess.Popen(
                    request["argv"],
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    cwd=request.get("cwd") or "/",
                    env=request.get("env") or {},
                    user=uid,
                    group=gid,
                    extra_groups=[],
                    start_new_session=True,
                    preexec_fn=take_terminal,
                    close_fds=True,
                    restore_signals=True,
                )
            finally:
                # Only the command holds the slave: when it and its children are gone, reading the master fails.
                os.close(slave)
        except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError, struct.error) as error:
            if master is not None:
                os.close(master)
            self.emit({"ev": "failed", "id": command_id, "error": str(error)})
            return
        command = Command(command_id, popen, terminal=master)
        self.commands[command_id] = command
        self.by_pid[popen.pid] = command
        os.set_blocking(master, False)
        self.selector.register(master, selectors.EVENT_READ, ("terminal", command))
        self.emit({"ev": "started", "id": command_id, "pid": popen.pid})

    def serve_terminal(self, command, events):
        if events & selectors.EVENT_WRITE:
            self.write_terminal(command)
        if events & selectors.EVENT_READ and command.terminal is not None:
            self.read_terminal(command)

    def read_terminal(self, command):
        """Relays what the command wrote to its terminal; returns whether there was something to read."""
        try:
            data = os.read(command.terminal, READ_CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""  # EIO: every slave is closed.
        if data:
            self.emit({"ev": "pty", "id": command.id, "data": base64.b64encode(data).decode()})
            return True
        self.close_terminal(command)
        return False

    def write_terminal(self, command):
        """Writes pending input to the terminal, as much as it takes now; waits to write the rest."""
        if command.terminal is None:
            command.pending_input.clear()
            return
        try:
            while command.pending_input:
                written = os.write(command.terminal, command.pending_input)
                del command.pending_input[:written]
        except BlockingIOError:
            pass
        except OSError:
            command.pending_input.clear()  # The terminal is closed: the input has no reader.
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if command.pending_input else 0)
        self.selector.modify(command.terminal, events, ("terminal", command))

    def close_terminal(self, command):
        if command.terminal is None:
            return
        self.selector.unregister(command.terminal)
        os.close(command.terminal)
        command.terminal = None
        command.pending_input.clear()
        command.open_streams -= 1

    def accept_sudo(self):
        try:
            connection, _ = sudo_listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        fds = []
        try:
            connection.settimeout(5)
            data, ancillary, _, _ = connection.recvmsg(1 << 20, socket.CMSG_SPACE(3 * 4))
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) - len(payload) % 4]))
            request = json.loads(data)
            uid = int(request["uid"])
            if len(fds) != 3 or uid not in SUDO_USERS:
                raise ValueError("a sudo request needs 3 file descriptors and the uid of root or user")
            caller_pid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
            caller_session = os.getsid(caller_pid)
            # A caller on a terminal (a PTY session) is in a session of its own, whose process groups no
            # process started here can join: the command then gets a session of its own, the caller
            # relays the signals the terminal sends it (Ctrl+C), and a hang-up when it goes away.
            from_terminal = caller_session != os.getsid(0)
            popen = subprocess.Popen(
                request["argv"],
                stdin=fds[0],
                stdout=fds[1],
                stderr=fds[2],
                cwd=request.get("cwd") or "/",
                env=request.get("env") or {},
                user=uid,
                group=SUDO_USERS[uid],
                extra_groups=[],
                # Else in the caller's process group, so that killing the command that ran sudo kills it too.
                **({"start_new_session": True} if from_terminal else {"process_group": int(request["pgid"])}),
                close_fds=True,
                restore_signals=True,
            )
            # The Popen is kept until reap() has its status: dropped earlier, its __del__ would reap a
            # child that already ended (a fast `sudo true`) itself, and sudo would never hear the exit.
            self.sudo_children[popen.pid] = (connection, popen)
            if from_terminal:
                self.sudo_sessions[popen.pid] = caller_session
                connection.setblocking(False)
                self.selector.register(connection.fileno(), selectors.EVENT_READ, ("sudo-caller", popen.pid))
        except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError) as error:
            try:
                connection.sendall(("error %s\n" % error).encode())
            except OSError:
                pass
            connection.close()
        finally:
            for fd in fds:
                os.close(fd)

    def read_sudo_caller(self, fd, pid):
        """Relays the signals a sudo caller on a terminal sends ("signal N" lines); when the caller is gone
        before its command ends, hangs the command up as a closed terminal would."""
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        numbers = [int(word) for word in data.decode("ascii", "replace").split() if word.isdigit()] if data else [signal.SIGHUP]
        if not data:
            self.selector.unregister(fd)
        for number in numbers:
            if number in SUDO_RELAYED_SIGNALS:
                try:
                    os.killpg(pid, number)
                except ProcessLookupError:
                    pass

    def read_output(self, fd, command_id, payload):
        stream, fd_number = payload
        command = self.commands.get(command_id)
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.emit({"ev": "out", "id": command_id, "fd": fd_number, "data": base64.b64encode(data).decode()})
            return
        self.selector.unregister(fd)
        stream.close()
        if command is not None:
            command.open_streams -= 1

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            sudo = self.sudo_children.pop(pid, None)
            if sudo is not None:
                connection, popen = sudo
                if self.sudo_sessions.pop(pid, None) is not None and connection.fileno() in self.selector.get_map():
                    self.selector.unregister(connection.fileno())
                connection.settimeout(5)
                # Reaped here: the Popen must not wait for it again.
                popen.returncode = os.waitstatus_to_exitcode(status)
                try:
                    connection.sendall(("exit %d\n" % popen.returncode).encode())
                except OSError:
                    pass  # sudo itself is gone.
                connection.close()
                continue
            command = self.by_pid.pop(pid, None)
            if command is None:
                continue  # An orphan that was reparented to pid 1.
            command.status = status
            command.exited_at = time.monotonic()
            # Popen must not wait for a pid that is already reaped.
            command.popen.returncode = os.waitstatus_to_exitcode(status)

    def finish_drained(self):
        now = time.monotonic()
        for command in list(self.commands.values()):
            if command.status is None:
                continue
            if command.open_streams > 0 and now - command.exited_at < DRAIN_GRACE_SECONDS:
                continue
            while command.terminal is not None and self.read_terminal(command):
                pass
            self.close_terminal(command)
            for stream in (command.popen.stdout, command.popen.stderr):
                if stream is not None and not stream.closed:
                    # Drain what is already buffered, then stop listening.
                    try:
                        while True:
                            data = os.read(stream.fileno(), READ_CHUNK)
                            if not data:
                                break
                            fd_number = 1 if stream is command.popen.stdout else 2
                            self.emit({"ev": "out", "id": command.id, "fd": fd_number, "data": base64.b64encode(data).decode()})
                    except (BlockingIOError, OSError):
                        pass
                    self.selector.unregister(stream.fileno())
                    stream.close()
            if command.popen.stdin is not None and not command.popen.stdin.closed:
                try:
                    command.popen.stdin.close()
                except OSError:
                    pass
            del self.commands[command.id]
            status = command.status
            if os.WIFSIGNALED(status):
                self.emit({"ev": "exit", "id": command.id, "signal": os.WTERMSIG(status)})
            else:
                self.emit({"ev": "exit", "id": command.id, "code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--assemble":
        try:
            assemble(json.loads(sys.argv[2]))
        except Exception as error:  # Reported to the local cloud, which refuses the sandbox.
            sys.stderr.write("sandbox setup failed: %s\n" % error)
            sys.exit(1)
    Supervisor().run()
