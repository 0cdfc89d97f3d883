"""Scripted MCP client over stdio (PyPI `mcp==2.3.0`): spawns CMD ARGS... and talks to it.

Usage (run with $PYTHON_MCP; options go BEFORE the command, everything after CMD is its argv):
  py_stdio_client.py [--mode ...] [--env K=V]... [--cwd DIR] [--list] [--call NAME [--args JSON]]
                     [--sampling-reply TEXT] [--elicitation-accept JSON] [--progress] CMD ARGS...
The server inherits this environment plus --env K=V. Output and exit codes as py_client.py (list -> JSON names, call -> {"content", "isError", ...}).
"""
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import py_client  # noqa: E402  (shares argument parsing, callbacks and output)
from mcp.client.stdio import StdioServerParameters  # noqa: E402


def main():
    argv = sys.argv[1:]
    env, cwd, opts, cmd = {}, None, [], []
    i = 0
    while i < len(argv):  # options up to the first bare word; that word is CMD
        a = argv[i]
        if a == "--":
            cmd = argv[i + 1:]
            break
        if not a.startswith("-"):
            cmd = argv[i:]
            break
        val = argv[i + 1] if i + 1 < len(argv) else ""
        if a == "--env":
            k, _, v = val.partition("=")
            env[k] = v
        elif a == "--cwd":
            cwd = val
        else:
            opts.append(a)
            if a in VALUE_OPTS:
                opts.append(val)
            else:
                i += 1
                continue
        i += 2
    o = py_client.parse_args(opts)
    if not cmd:
        sys.exit("py_stdio_client: error: no command given")
    params = StdioServerParameters(command=cmd[0], args=cmd[1:],
                                   env={**os.environ, **env}, cwd=cwd)  # SDK default env drops most vars

    @contextlib.asynccontextmanager
    async def server():
        yield params
    py_client.main_with(server, o)


VALUE_OPTS = {"--mode", "--header", "--timeout", "--call", "--args", "--sampling-reply", "--elicitation-accept"}

if __name__ == "__main__":
    main()
