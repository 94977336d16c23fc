"""Run a Markdown page's fenced code blocks as a reader would: in the page's order, in one folder, verbatim.

    for block in code_blocks(Path("README.md").read_text()):
        ...  # block.lang, block.text, block.line, block.use

How a block is used is its info string, or an HTML comment on the line before it (invisible on the page):

    ```bash / ```sh                 each command runs (a line, with its backslash continuations; comments and blank
                                    lines skipped); ``mmfuse serve`` starts in the background until probed
    ```python                       runs as one script
    ```toml / ```text / ...         not code to run
    <!-- illustrative: WHY -->      not run: a placeholder value, a set-up command (make), a long job
    <!-- file: NAME -->             not run: written to NAME in the folder (a plugin module the next blocks import)

The runner knows nothing of mmfuse beyond how ``mmfuse serve`` is started and probed; a test names the checks each
command's output must pass. Written for the README today and for the pages of a documentation site later.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

RUN_LANGS = {"bash": "shell", "sh": "shell", "shell": "shell", "python": "python"}
TEXT_LANGS = {"toml", "text", "yaml", "json", "console"}
FENCE = re.compile(r"^```(\S*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*(illustrative|file):\s*(.+?)\s*-->$")


@dataclass(frozen=True)
class Block:
    lang: str   # the fence's info string ("" when it has none)
    text: str
    line: int   # 1-based line of the opening fence
    use: str    # "shell", "python", "text", "illustrative", or "file:NAME"


@dataclass(frozen=True)
class Command:
    text: str   # as written, continuations joined
    line: int   # 1-based line in the page where it starts


def code_blocks(markdown: str) -> list[Block]:
    """Every fenced block of a page, with how it is to be used; a block with no info string and no directive is
    a ValueError (a reader cannot tell whether it is code to run)."""
    lines, blocks, i = markdown.splitlines(), [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        lang, text = opening.group(1), "\n".join(lines[i + 1:end]) + "\n"
        directive = DIRECTIVE.match(lines[i - 1].strip()) if i else None
        if directive:
            use = "illustrative" if directive.group(1) == "illustrative" else f"file:{directive.group(2)}"
        elif lang in RUN_LANGS:
            use = RUN_LANGS[lang]
        elif lang in TEXT_LANGS:
            use = "text"
        else:
            raise ValueError(f"line {i + 1}: a fenced block needs an info string (bash, python, text, ...) or an "
                             "<!-- illustrative: why --> comment before it")
        blocks.append(Block(lang, text, i + 1, use))
        i = end + 1
    return blocks


def shell_commands(block: Block) -> list[Command]:
    """A shell block's commands: one per line, backslash continuations joined; comment-only and blank lines skipped."""
    commands, pending, start = [], "", 0
    for offset, raw in enumerate(block.text.splitlines()):
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        start = start if pending else block.line + 1 + offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        commands.append(Command(pending + raw, start))
        pending = ""
    return commands


@dataclass
class Result:
    command: Command
    returncode: int
    stdout: str
    stderr: str
    probes: dict[str, object]  # a served command's answers: path -> parsed JSON


class Runner:
    """Runs commands and scripts in ``folder`` with ``env``; each must exit 0 within ``timeout`` seconds."""

    def __init__(self, folder: Path, env: dict[str, str], timeout: float = 300):
        self.folder, self.env, self.timeout = folder, env, timeout

    def shell(self, command: Command, probe: Callable[[str], dict[str, object]] | None = None) -> Result:
        """Run one command; a server (``probe`` given) runs in the background until ``probe(base_url)`` returns,
        then is stopped."""
        if probe is not None:
            return self._serve(command, probe)
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command.text], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=self.timeout)
        return Result(command, done.returncode, done.stdout, done.stderr, {})

    def python(self, block: Block) -> Result:
        done = subprocess.run([sys.executable, "-c", block.text], cwd=self.folder, env=self.env, capture_output=True,
                              text=True, timeout=self.timeout)
        return Result(Command(block.text, block.line), done.returncode, done.stdout, done.stderr, {})

    def _serve(self, command: Command, probe: Callable[[str], dict[str, object]]) -> Result:
        words = shlex.split(command.text, comments=True)
        host = words[words.index("--host") + 1] if "--host" in words else "127.0.0.1"
        port = words[words.index("--port") + 1] if "--port" in words else "8000"
        server = subprocess.Popen(["bash", "-c", f"exec {command.text}"], cwd=self.folder, env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        base = f"http://{host}:{port}"
        try:
            wait_until_up(base, server, self.timeout)
            answers = probe(base)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                out, err = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                out, err = server.communicate()
        return Result(command, 0 if server.returncode in (0, -signal.SIGINT) else server.returncode, out, err, answers)


def wait_until_up(base: str, server: subprocess.Popen, timeout: float) -> None:
    """Poll ``base``/health until it answers; a server that exits first is an AssertionError with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not answer on {base} within {timeout:.0f} s")


def get_json(url: str, body: dict | None = None) -> object:
    """GET (or POST ``body`` as JSON to) ``url`` and parse the answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())
