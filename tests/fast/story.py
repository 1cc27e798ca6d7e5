"""What a recipe sent to each host, told as a short story: one line per script, then
each host's state afterwards. The golden files in ``golden/`` are these stories.

Labels are read from the scripts themselves (the distinctive command each builder in
``deployer.commands`` writes), so a reader of a golden file sees every step and undo
path in order without reading shell. A missing golden file fails; regenerate them with
``DEPLOYER_UPDATE_GOLDEN=1 python3 -m pytest tests/fast``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from fakehost import FakeFleet

from deployer.commands.chain import THEN

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DEPLOYER_UPDATE_GOLDEN") == "1"


def _numbers(script: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"releases/(\d+)", script)))


def _log_line(script: str) -> str:
    events = []
    for raw in re.findall(r"printf '%s\\n' '(\{.*?\})' >>", script):
        data = json.loads(raw)
        parts = [data.get("event"), data.get("release"), data.get("status"), data.get("detail")]
        events.append(" ".join(str(p) for p in parts if p is not None))
    return "log: " + "; ".join(events)


def _hook(script: str) -> str:
    command = re.search(r"exec (?:sudo .* )?sh -c (.*)$", script, re.S)
    return f"hook {command.group(1).strip() if command else '?'}"


RULES: list[tuple[str, object]] = [
    ("if mkdir", "lock + read state"),
    ("exists yes", lambda s: "check" if "writable yes" in s else "read state"),
    ("if grep -qF", "unlock"),
    ("then\n  head -c 4000", "break lock"),
    ("log.jsonl", _log_line),
    (".deployer-download", lambda s: f"download release {_numbers(s)[0]}"),
    (
        "cp -al --parents",
        lambda s: "copy release {1} from release {0} ({2})".format(
            *_numbers(s), "delta" if "tar -xzf -" in s else "identical"
        ),
    ),
    (".deployer-release.json", lambda s: f"prepare release {_numbers(s)[0]}"),
    ("--no-overwrite-dir", lambda s: f"upload release {_numbers(s)[0]} (full)"),
    ("unhealthy after", "health check"),
    ("is not on this host", lambda s: f"switch current -> releases/{_numbers(s)[0]}"),
    ("mv -T", lambda s: "switch back current -> " + re.search(r"ln -s (\S+)", s).group(1).strip("'")),
    ('"$(readlink', lambda s: f"remove current if it is releases/{_numbers(s)[0]}"),
    ("exec sh -c", _hook),
    ("exec sudo", _hook),
    ("base64 <", lambda s: f"read manifest of release {_numbers(s)[0]}"),
    ("tar -cf -", lambda s: f"pack release {_numbers(s)[0]}"),
    ("gzip -dc", lambda s: f"read manifest of release {_numbers(s)[0]}"),
    ("rm -rf -- /srv/demo/releases", lambda s: "remove releases " + ", ".join(_numbers(s))),
    ("rm -rf -- /srv/demo", "remove deploy_to"),
    ("current.tmp-", "remove leftover temporary links"),
    ("show-environment", "detect systemd or cron"),
    ("tar -xpf - -C /srv/demo/.deployer", "install scheduled cleanup"),
]


def label(script: str) -> str:
    """One line saying what a script does (steps sent as one script: each, joined by +)."""
    if THEN in script:
        return " + ".join(label(part) for part in script.split(THEN))
    for needle, name in RULES:
        if needle in script:
            return name(script) if callable(name) else name
    return "UNLABELLED: " + script.strip().splitlines()[-1][:80]


def tell(title: str, fleet: FakeFleet, error: BaseException | None = None) -> str:
    """The story of one run: the error, each host's scripts, each host's state after."""
    lines = [f"# {title}"]
    if error is not None:
        code = getattr(error, "exit_code", "?")
        lines.append(f"error (exit {code}): {getattr(error, 'message', error)}")
    else:
        lines.append("ok")
    for name, host in fleet.hosts.items():
        lines.append(f"\n{name}:")
        lines += [f"  {i:>2}. {label(s)}" for i, s in enumerate(host.received, 1)]
    lines.append("\nafter:")
    for name, host in fleet.hosts.items():
        log = ", ".join(f"{e.get('event')} {e.get('release')} {e.get('status')}" for e in host.log())
        lines.append(
            f"  {name}: current -> {host.current() or 'none'}; releases {host.releases() or 'none'}; "
            f"{'LOCKED' if host.locked() else 'unlocked'}; log: {log or 'empty'}"
        )
    return "\n".join(lines) + "\n"


def matches_golden(name: str, text: str) -> None:
    """Compare with ``golden/<name>.txt``; a missing file fails unless regenerating."""
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"no golden file {path.name}; write it with DEPLOYER_UPDATE_GOLDEN=1 and review it"
    expected = path.read_text()
    assert text == expected, f"story differs from golden/{path.name}:\n{text}"
