"""Reads and writes the local cloud's file metadata: extended attributes in the `user.e2b.` namespace.

Node has no extended-attribute calls (the npm packages that add them are native addons, which this
project does not build), so the server keeps this one Python process and asks it over stdin/stdout,
one JSON request a line, each answered by one JSON line with the same id:

  {"id": 1, "op": "read", "paths": ["/proc/123/fd/7/a.txt", ...], "follow": false}
      -> {"id": 1, "results": [{"author": "mish"}, {}, ...]}       (follows a last symlink only with follow)
  {"id": 2, "op": "replace", "path": "/proc/123/fd/9", "metadata": {"author": "mish"}}
      -> {"id": 2}                                                   (follows the path: an open file)
  any failure -> {"id": n, "error": {"code": "EACCES", "message": "..."}}

Paths are the server's own no-follow paths through its open file descriptors (see envd/entry.ts), so
this process never resolves a path inside a sandbox by itself.
"""
import errno
import json
import os
import sys

PREFIX = "user.e2b."
# A file that cannot have extended attributes (a symlink, /proc, a filesystem without them) has no metadata.
NO_METADATA = {errno.ENOENT, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA, errno.EPERM, errno.ENOTDIR}


def read(path, follow):
    try:
        names = [name for name in os.listxattr(path, follow_symlinks=follow) if name.startswith(PREFIX)]
    except OSError as error:
        if error.errno in NO_METADATA:
            return {}
        raise
    metadata = {}
    for name in names:
        try:
            metadata[name[len(PREFIX):]] = os.getxattr(path, name, follow_symlinks=follow).decode("utf-8", "replace")
        except OSError as error:
            if error.errno not in NO_METADATA:
                raise
    return metadata


def replace(path, metadata):
    for name in os.listxattr(path):
        if name.startswith(PREFIX) and name[len(PREFIX):] not in metadata:
            os.removexattr(path, name)
    for key, value in metadata.items():
        os.setxattr(path, PREFIX + key, value.encode("utf-8"))


def answer(request):
    if request["op"] == "read":
        return {"results": [read(path, request.get("follow", False)) for path in request["paths"]]}
    if request["op"] == "replace":
        replace(request["path"], request["metadata"])
        return {}
    raise ValueError("unknown op %r" % request["op"])


def main():
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = answer(request)
        except OSError as error:
            reply = {"error": {"code": errno.errorcode.get(error.errno, "EIO"), "message": error.strerror or str(error)}}
        except (KeyError, ValueError, TypeError) as error:
            reply = {"error": {"code": "EINVAL", "message": str(error)}}
        reply["id"] = request.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
