"""Drives `dn-dump analyze CORE` through a pseudo-terminal, as a user at a keyboard would:
a long command interrupted by Ctrl-C must stop with "cancelled" and give the prompt back;
the session must still answer; Ctrl-C at an empty prompt says how to quit; Ctrl-D quits.
Usage: repl_ctrlc.py DN_DUMP CORE. Prints the transcript; exit status 0 when all held."""
import os, pty, select, sys, time

exe, core = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.environ["HOME"] = os.environ.get("TMPDIR", "/tmp")  # keep the history file out of the user's
    os.execv(exe, [exe, "analyze", core])

transcript = b""
cursor = 0  # where the next search starts: just after the last thing found

def read_until(needle, timeout):
    global transcript, cursor
    deadline = time.time() + timeout
    start = cursor
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
        if needle in transcript[start:]:
            cursor = transcript.index(needle, start) + len(needle)
            return True
    return False

def fail(why):
    sys.stdout.write(transcript.decode(errors="replace"))
    sys.stdout.write("\nFAILED: " + why + "\n")
    sys.exit(1)

if not read_until(b"> ", 300):
    fail("no prompt")
os.write(fd, b"dumpheap -live\r")
time.sleep(0.3)
os.write(fd, b"\x03")
if not read_until(b"cancelled", 120):
    fail("Ctrl-C did not cancel the running command")
if not read_until(b"> ", 30):
    fail("no prompt after the cancelled command")
if b"Total " in transcript:
    fail("the command ran to its end despite Ctrl-C")
os.write(fd, b"eeversion\r")
if not read_until(b"Workstation mode", 60):
    fail("the session did not answer after a cancelled command")
if not read_until(b"> ", 30):
    fail("no prompt after eeversion")
os.write(fd, b"\x03")
if not read_until(b"Ctrl-D to quit", 30):
    fail("Ctrl-C at an empty prompt did not say how to quit")
if not read_until(b"> ", 30):
    fail("no prompt after Ctrl-C at the prompt")
time.sleep(0.2)  # the line editor is reading again (raw mode) before Ctrl-D is typed
os.write(fd, b"\x04")
deadline = time.time() + 30
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        read_until(b"\0", 0.2)
        sys.stdout.write(transcript.decode(errors="replace"))
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            sys.exit(0)
        fail("exit status %r after Ctrl-D" % status)
    time.sleep(0.1)
fail("Ctrl-D did not end the session")
