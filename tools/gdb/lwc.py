# lwc's gdb commands: every SCont, and the backtrace of a suspended one.
#
#   (gdb) source tools/gdb/lwc.py        (or auto-loaded: see README.md)
#   (gdb) info sconts                    id, status, name, scheduler, wait
#   (gdb) lwc bt 7                       SCont 7's stack, from its saved context
#
# Reads the runtime's records through the debug information (a build with
# -g, which is configure's default), without calling into the program, so it
# works on a process stopped anywhere.  The backtrace is x86-64's saved frame
# (substrate/context_x86_64.S); on other machines, and for a copy-stack SCont
# whose frames are saved aside, it says so.
import gdb

STATUS = ("running", "runnable", "blocked on a data structure", "completed")


def _sconts():
    """Every SCont record that was made and is not freed or completed."""
    rt = gdb.parse_and_eval("lwc_rt")
    batch = rt["scont_batches"]
    while int(batch) != 0:
        for i in range(int(batch["used"])):
            s = batch["s"][i]
            if int(s["alive"]) and not int(s["completed"]):
                yield s
        batch = batch["next"]


def _string(p):
    return p.string() if int(p) != 0 else None


def _symbol(addr):
    """The function at addr, by name, or its address."""
    block = gdb.block_for_pc(addr) if addr else None
    while block is not None and block.function is None:
        block = block.superblock
    return block.function.name if block is not None else "0x%x" % addr


def _scheduler(s):
    up = s["up"]
    if int(up) == 0 or int(up["switch_to_next"]) == 0:
        return "none"
    fn = _symbol(int(up["switch_to_next"]))
    env = up["env"]
    if fn == "kit_next":                # the kit: rr, or a policy's name
        try:
            kit = env.cast(gdb.lookup_type("struct lwc_kit").pointer())
            policy = kit["policy"]
            if int(policy) == 0:
                return "rr"
            return _string(policy["name"]) or "kit"
        except gdb.error:
            return "kit"
    return {"ws_next": "ws", "loop_next": "loop"}.get(fn, fn)


def _wait(s):
    what = _string(s["wait_what"])
    if int(s["retry_nodes"]) != 0:
        return "PTM retry on %d PVars" % int(s["retry_nnodes"])
    if what:
        return "%s 0x%x" % (what, int(s["wait_obj"]))
    return ""


def _find(key):
    """The SCont with id key, or the first named key."""
    for s in _sconts():
        if str(int(s["id"])) == key or _string(s["name"]) == key:
            return s
    return None


class InfoSConts(gdb.Command):
    """List every SCont: id, status, name, scheduler, what it waits on."""

    def __init__(self):
        super().__init__("info sconts", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        try:
            sconts = list(_sconts())
        except gdb.error as e:
            raise gdb.GdbError("lwc: no runtime here (%s)" % e)
        print("%6s  %-28s %-12s %-10s %s" % ("id", "status", "name", "scheduler", "waits on"))
        for s in sconts:
            status = STATUS[int(s["status"]["value"]) & 3]
            name = _string(s["name"]) or ""
            print("%6d  %-28s %-12s %-10s %s" % (int(s["id"]), status, name, _scheduler(s),
                                                 _wait(s)))
        print("%d SConts" % len(sconts))


class Lwc(gdb.Command):
    """lwc's commands: lwc bt ID|NAME."""

    def __init__(self):
        super().__init__("lwc", gdb.COMMAND_USER, prefix=True)


class LwcBt(gdb.Command):
    """lwc bt ID|NAME: the backtrace of a suspended SCont, from its saved context.

    The registers of the selected thread are set to the SCont's for the
    backtrace and put back after; the program must be live (not a core)."""

    def __init__(self):
        super().__init__("lwc bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        key = arg.strip()
        if not key:
            raise gdb.GdbError("usage: lwc bt ID|NAME (from info sconts)")
        s = _find(key)
        if s is None:
            raise gdb.GdbError("lwc: no SCont %s" % key)
        scont_id = int(s["id"])
        if (int(s["status"]["value"]) & 3) == 0:
            raise gdb.GdbError("lwc: SCont %d is running: see its OS thread (info threads)"
                               % scont_id)
        arch = gdb.selected_frame().architecture().name()
        if "x86-64" not in arch:
            raise gdb.GdbError("lwc bt: x86-64 only (this is %s)" % arch)
        try:
            sp = int(s["ctx"]["sp"])
        except gdb.error:
            raise gdb.GdbError("lwc bt: this build switches with ucontext, which keeps no "
                               "saved frames the script can read (configure "
                               "--with-context=asm)")
        if sp == 0:
            raise gdb.GdbError("lwc: SCont %d has no saved frames of its own (not yet run, "
                               "or a copy stack's, saved aside)" % scont_id)
        word = gdb.lookup_type("unsigned long").pointer()

        def load(addr):
            return int(gdb.Value(addr).cast(word).dereference())

        # substrate/context_x86_64.S: rbp at sp + 48, the return address at 56.
        regs = {"$rip": load(sp + 56), "$rsp": sp + 64, "$rbp": load(sp + 48)}
        gdb.execute("frame 0", to_string=True)
        saved = {r: int(gdb.parse_and_eval(r)) for r in regs}
        try:
            for r, v in regs.items():
                gdb.execute("set var %s = %d" % (r, v))
            gdb.execute("backtrace")
        finally:
            for r, v in saved.items():
                gdb.execute("set var %s = %d" % (r, v))
            gdb.execute("frame 0", to_string=True)


InfoSConts()
Lwc()
LwcBt()
