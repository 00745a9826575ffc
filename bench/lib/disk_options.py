"""The ways a local sandbox's writable storage could be limited, measured on this machine (see
src/localcloud/isolation/disk.ts for the choice). Run by bench/disk.bench.ts, as root, inside a mount
namespace of its own (`unshare --mount`), so that nothing it mounts is seen by the host; prints one JSON
object. Arguments: <rounds> <scratch folder on the disk the local cloud uses> <supervisor.py>.

Per option: the set-up a sandbox would pay when it starts (ms), the write throughput of one 256 MiB
file with fdatasync (MB/s), and what stops a writer at the limit.
"""

import ctypes
import errno
import fcntl
import gzip
import importlib.util
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

MiB = 1024 * 1024
WRITE_MIB = 256
DISK_MIB = 1024

# The supervisor is imported from the source tree, which must not get a __pycache__.
sys.dont_write_bytecode = True
rounds = int(sys.argv[1])
scratch = tempfile.mkdtemp(prefix="tradeswarm-disk-bench-", dir=sys.argv[2])
spec = importlib.util.spec_from_file_location("supervisor", sys.argv[3])
supervisor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(supervisor)
libc = ctypes.CDLL(None, use_errno=True)
supervisor.mount(None, "/", None, supervisor.MS_REC | supervisor.MS_PRIVATE)
MKFS = next(path for path in ("/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4") if os.path.exists(path))


def median(samples):
    ordered = sorted(samples)
    return ordered[len(ordered) // 2]


def timed_ms(action):
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def umount(path):
    if libc.umount2(path.encode(), 0) != 0:
        raise OSError(ctypes.get_errno(), "umount %s" % path)


def write_mb_per_s(folder):
    """Writes one 256 MiB file in 1 MiB writes, then fdatasync."""
    chunk = bytes(MiB)
    path = os.path.join(folder, "throughput")
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(WRITE_MIB):
            os.write(fd, chunk)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - started
    os.unlink(path)
    return WRITE_MIB * MiB / elapsed / 1e6


def folder(name):
    path = os.path.join(scratch, name)
    os.makedirs(path, exist_ok=True)
    return path


def make_image(path, size_mib, *features):
    with open(path, "wb") as image:
        image.truncate(size_mib * MiB)
    seed = folder("seed")
    subprocess.run([MKFS, "-q", "-F", "-O", "^has_journal", *features, "-m", "0", "-E", "root_owner=0:0,nodiscard", "-d", seed, path], check=True)


results = {}

# The host's disk, as a sandbox's /tmp was before: a folder of the data folder, bind-mounted.
results["hostFolder"] = {"writeMBps": median([write_mb_per_s(folder("host")) for _ in range(3)])}

# A tmpfs with size=: its set-up is one mount.
point = folder("tmpfs")
setup = []
for _ in range(rounds):
    setup.append(timed_ms(lambda: supervisor.mount("tmpfs", point, "tmpfs", 0, "size=%dm" % DISK_MIB)))
    umount(point)
supervisor.mount("tmpfs", point, "tmpfs", 0, "size=%dm" % DISK_MIB)
results["tmpfs"] = {"setupMs": median(setup), "writeMBps": median([write_mb_per_s(point) for _ in range(3)])}
umount(point)

# ... and it is memory: a writer in a memory cgroup of 64 MiB fills a 256 MiB tmpfs until the OOM killer ends it.
group = "/sys/fs/cgroup/memory/tradeswarm-disk-bench-%d" % os.getpid()
os.mkdir(group)
try:
    with open(os.path.join(group, "memory.limit_in_bytes"), "w") as limit:
        limit.write(str(64 * MiB))
    supervisor.mount("tmpfs", point, "tmpfs", 0, "size=256m")
    child = os.fork()
    if child == 0:
        with open(os.path.join(group, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
        try:
            with open(os.path.join(point, "fill"), "wb") as fill:
                for _ in range(256):
                    fill.write(bytes(MiB))
                    fill.flush()
        except OSError as error:
            os._exit(10 + (error.errno or 0) % 100)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    written = os.stat(os.path.join(point, "fill")).st_size
    ended = "killed by %s" % signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else "exit %d" % os.WEXITSTATUS(status)
    results["tmpfsInMemoryCgroup"] = {"memoryLimitMiB": 64, "tmpfsSizeMiB": 256, "writtenMiB": written / MiB, "writer": ended}
    umount(point)
finally:
    os.rmdir(group)

# An image per sandbox, as the local cloud does it: the template's image is made once with mkfs, and
# each sandbox's init copies it (sparsely) and attaches the copy (loop device with autoclear and direct
# I/O, ext4 mounted with discard and nobarrier). Beside it, an mkfs per sandbox instead of the copy.
point = folder("image")
template = os.path.join(scratch, "template.img")
make_image(template, DISK_MIB)
copied, formatted = [], []
for round_number in range(rounds):
    image = os.path.join(scratch, "disk-%d.img" % round_number)
    formatted.append(timed_ms(lambda: make_image(image, DISK_MIB)))
    os.unlink(image)
    copied.append(timed_ms(lambda: (supervisor.copy_sparse(template, image), supervisor.attach_disk(image, point))))
    if round_number < rounds - 1:
        umount(point)
        os.unlink(image)
results["imagePerSandbox"] = {"setupMs": median(copied), "mkfsMs": median(formatted), "writeMBps": median([write_mb_per_s(point) for _ in range(3)])}
unmounted = []
for _ in range(3):
    with open(os.path.join(point, "file"), "w") as written:
        written.write("x")
    unmounted.append(timed_ms(lambda: umount(point)))
    supervisor.attach_disk(image, point)
results["imagePerSandbox"]["unmountMs"] = median(unmounted)

# The root a sandbox's init assembles with its disk mounted (see `assemble` in guest/supervisor.py): a
# skeleton tmpfs, writable overlays over it, over each host folder (/usr, and /lib* where they are not
# links) and over the /etc layer and the host's /etc, their upper layers on the disk. Beside it, the
# read-only root it replaced: the tmpfs, the host folders bind-mounted read-only, the /etc layer under a
# read-only overlay, the root remounted read-only.
MNT_DETACH = 2
ETC_FILES = {"passwd": "root:x:0:0:root:/root:/bin/bash\n", "group": "root:x:0:\n", "hostname": "bench\n", "hosts": "127.0.0.1\tlocalhost\n"}
host_folders = ["usr"] + [name for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32") if os.path.isdir("/" + name) and not os.path.islink("/" + name)]
root, etc_layer = folder("root"), folder("etc-layer")


def detach_all(path):
    """Lazily unmounts every mount stacked at `path`, with what is mounted below them."""
    while libc.umount2(path.encode(), MNT_DETACH) == 0:
        pass


def writable_root(layers):
    os.mkdir(layers, 0o700)
    supervisor.mount("tmpfs", root, "tmpfs", supervisor.MS_NOSUID | supervisor.MS_NODEV, "mode=755,size=1m")
    for name in (*host_folders, "etc"):
        os.mkdir(os.path.join(root, name))
    supervisor.mount_overlay(root, [root], layers, "root")
    for name in host_folders:
        supervisor.mount_overlay(os.path.join(root, name), ["/" + name], layers, name)
    supervisor.build_etc_layer(etc_layer, ETC_FILES)
    supervisor.mount_overlay(os.path.join(root, "etc"), [etc_layer, "/etc"], layers, "etc")


def read_only_root():
    supervisor.mount("tmpfs", root, "tmpfs", 0, "mode=755,size=8m")
    for name in host_folders:
        os.mkdir(os.path.join(root, name))
        supervisor.bind("/" + name, os.path.join(root, name), read_only=True)
    os.mkdir(os.path.join(root, "etc"))
    supervisor.build_etc_layer(etc_layer, ETC_FILES)
    os.chdir(etc_layer)
    supervisor.mount("overlay", os.path.join(root, "etc"), "overlay", supervisor.MS_RDONLY | supervisor.MS_NOSUID | supervisor.MS_NODEV, "lowerdir=.:/etc")
    os.chdir("/")
    supervisor.mount(None, root, None, supervisor.MS_REMOUNT | supervisor.MS_BIND | supervisor.MS_RDONLY)


writable, read_only = [], []
for round_number in range(rounds):
    read_only.append(timed_ms(read_only_root))
    detach_all(root)
    detach_all(etc_layer)
    writable.append(timed_ms(lambda: writable_root(os.path.join(point, "layers-%d" % round_number))))
    detach_all(root)
    detach_all(etc_layer)
results["root"] = {"writableSetupMs": median(writable), "readOnlySetupMs": median(read_only), "hostFolders": host_folders}
umount(point)

# One shared filesystem with project quotas: a folder per sandbox with its own project id and limit.
QCMD = lambda command, kind: (command << 8) | kind  # noqa: E731
Q_QUOTAON, Q_SETQUOTA, PRJQUOTA, QFMT_VFS_V1, QIF_BLIMITS = 0x800002, 0x800008, 2, 4, 1
FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR, FS_XFLAG_PROJINHERIT = 0x801C581F, 0x401C5820, 0x200
point = folder("shared")


def quota_folder(device, project, limit_mib):
    path = os.path.join(point, "sandbox-%d" % project)
    os.mkdir(path)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        attributes = fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(28))
        flags, extent, extents, _, cow = struct.unpack_from("5I", attributes)
        fcntl.ioctl(fd, FS_IOC_FSSETXATTR, struct.pack("5I8x", flags | FS_XFLAG_PROJINHERIT, extent, extents, project, cow))
    finally:
        os.close(fd)
    quota = struct.pack("8QI4x", limit_mib * 1024, limit_mib * 1024, 0, 0, 0, 0, 0, 0, QIF_BLIMITS)
    if libc.quotactl(QCMD(Q_SETQUOTA, PRJQUOTA), device, project, quota) != 0:
        raise OSError(ctypes.get_errno(), "setquota")
    os.chmod(path, 0o777)
    return path


def written_mib(path, as_user):
    """Writes 32 MiB into a folder with a 16 MiB quota, as uid 1000 or as root: how far it got."""
    child = os.fork()
    if child == 0:
        if as_user:
            os.setresgid(1000, 1000, 1000)
            os.setresuid(1000, 1000, 1000)
        written = 0
        try:
            fd = os.open(os.path.join(path, "fill-%d" % as_user), os.O_WRONLY | os.O_CREAT, 0o644)
            for _ in range(32):
                os.write(fd, bytes(MiB))
                written += MiB
            os.fsync(fd)
        except OSError:
            pass
        os._exit(written // MiB)
    _, status = os.waitpid(child, 0)
    return os.WEXITSTATUS(status)


shared_image = os.path.join(scratch, "shared.img")
try:
    one_time = timed_ms(lambda: (make_image(shared_image, 8 * DISK_MIB, "-O", "quota,project"), supervisor.attach_disk(shared_image, point)))
    device = next(line.split()[0] for line in open("/proc/self/mounts") if line.split()[1] == point).encode()
    if libc.quotactl(QCMD(Q_QUOTAON, PRJQUOTA), device, QFMT_VFS_V1, None) != 0 and ctypes.get_errno() != errno.EBUSY:
        raise OSError(ctypes.get_errno(), "quotaon: %s" % os.strerror(ctypes.get_errno()))
    setup = [timed_ms(lambda project=project: quota_folder(device, project, 16)) for project in range(1, rounds + 1)]
    limited = os.path.join(point, "sandbox-1")
    results["sharedWithProjectQuotas"] = {
        "oneTimeSetupMs": one_time,
        "setupMs": median(setup),
        "quotaMiB": 16,
        "writtenMiBAsUser": written_mib(limited, True),
        "writtenMiBAsRoot": written_mib(limited, False),
    }
    umount(point)
except OSError as error:
    # The kernel may have no quota support for ext4 at all (it then refuses the mount).
    config = []
    try:
        with gzip.open("/proc/config.gz", "rt") as kernel_config:
            config = [line.strip() for line in kernel_config if "QFMT_V2" in line or "XFS_QUOTA" in line]
    except OSError:
        pass
    results["sharedWithProjectQuotas"] = {"unavailable": str(error), "kernelConfig": config}

shutil.rmtree(scratch)
print(json.dumps(results))
