#!/usr/bin/env python3
"""Benchmark deployer against Capistrano 3 on the same SSH containers: one command.

    python3 benchmarks/run.py            # the full run (about 25 minutes on 2 CPUs), writes benchmarks/results.md
    python3 benchmarks/run.py --quick    # smoke test (under 3 minutes), writes benchmarks/.cache/results-quick.md

See benchmarks/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import relay  # noqa: E402  (the modules live next to this script)
import report  # noqa: E402
import saved  # noqa: E402
import scenarios  # noqa: E402
import servers  # noqa: E402
import tools  # noqa: E402
import workloads  # noqa: E402
from measure import require_time_binary  # noqa: E402

CACHE = HERE / ".cache"


@dataclass(frozen=True)
class Plan:
    """How much to run; --quick shrinks it to a smoke test."""

    runs: int
    hosts: int
    big_runs: int
    cap_big_runs: int
    output: Path
    timeout: float
    bastion_runs: int
    rtts: tuple[float, ...]
    quick: bool
    ours_only: bool
    baseline: Path | None
    parallel: int | None
    report_from: Path | None


def parse(argv: list[str]) -> Plan:
    parser = argparse.ArgumentParser(
        description="deployer vs Capistrano 3, side by side on local SSH containers"
    )
    parser.add_argument(
        "--runs", type=int, help="runs of each 1-host and N-host scenario (default 5; --quick: 3)"
    )
    parser.add_argument("--hosts", type=int, help="hosts for the fleet deploy (default 16; --quick: 4)")
    parser.add_argument(
        "--big-runs", type=int, default=3, help="runs of the 1 GiB deploy for ours (default 3)"
    )
    parser.add_argument(
        "--cap-big-runs",
        type=int,
        default=2,
        help="runs of the 1 GiB deploy for Capistrano (default 2; 0 skips it)",
    )
    parser.add_argument("--skip-big", action="store_true", help="leave out the 1 GiB workload")
    parser.add_argument(
        "--skip-bastion", action="store_true", help="leave out the fleet deploy through a bastion"
    )
    parser.add_argument(
        "--rtt",
        type=float,
        action="append",
        help="round-trip times to run every scenario at, in ms (repeatable; default 0, 25, 50)",
    )
    parser.add_argument(
        "--ours-only", action="store_true", help="leave Capistrano out (for A/B runs of our own changes)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a folder holding another deployer/ (e.g. `git archive HEAD~1 deployer | tar -x -C DIR`): "
        "measured as `ours (baseline)`, interleaved with ours, for A/B runs",
    )
    parser.add_argument(
        "--parallel", type=int, help="ours' `parallel` setting (default: the host count, as Capistrano)"
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        help="write the report again from a run's benchmarks/.cache/logs/<time>/samples.json (runs nothing)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 run, 4 hosts, no big workload, no bastion, two Capistrano setups in the fleet",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (default benchmarks/results.md; "
        "--quick: benchmarks/.cache/results-quick.md)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds one command may take (default 900)"
    )
    args = parser.parse_args(argv)
    skip_big = args.skip_big or args.quick
    return Plan(
        runs=args.runs or (1 if args.quick else 5),
        hosts=args.hosts or (4 if args.quick else 16),
        big_runs=0 if skip_big else args.big_runs,
        cap_big_runs=0 if skip_big else args.cap_big_runs,
        output=args.output or (CACHE / "results-quick.md" if args.quick else HERE / "results.md"),
        timeout=args.timeout,
        bastion_runs=0 if args.skip_bastion or args.quick else args.runs or 3,
        rtts=tuple(args.rtt or (0, 25, 50)),
        quick=args.quick,
        ours_only=args.ours_only,
        baseline=args.baseline,
        parallel=args.parallel,
        report_from=args.report_from,
    )


def preflight() -> None:
    """Fail before starting anything if a tool the run needs is missing."""
    require_time_binary()
    for binary, package in (("cap", "capistrano"), ("docker", "docker.io")):
        if shutil.which(binary) is None:
            raise SystemExit(f"`{binary}` not found: apt-get install -y {package}")


def measure_all(
    bench: scenarios.Bench,
    ours: tools.Tool,
    caps: list[tools.Tool],
    plan: Plan,
    via: servers.Bastion | None,
) -> None:
    """Every scenario at every round-trip time, tools taking turns going first; then the
    bastion (ours only) and the big workload (ours and the stock Capistrano) at 0 ms.
    The fleet deploy leaves out the stock Capistrano setup (its lean twin is faster)."""
    assert bench.relays is not None
    every = [ours, *caps]
    in_fleet = [ours, *[c for c in caps if not getattr(c, "linked_dirs", False)]][: 2 if plan.quick else 3]
    for rtt in plan.rtts:
        bench.relays.set_rtt(rtt)
        print(f"\n--- {rtt:g} ms round-trip time ---", flush=True)
        for tool in every:
            scenarios.handshake(bench, tool, 1)
        print(
            f"1 host: first deploy, identical redeploy, 1% redeploy, rollback ({plan.runs} runs)", flush=True
        )
        for run in range(1, plan.runs + 1):
            for tool in scenarios.turns(every, run):
                scenarios.single_host(bench, tool, run)
        print(f"{plan.hosts} hosts: first deploy ({plan.runs} runs)", flush=True)
        for run in range(1, plan.runs + 1):
            for tool in scenarios.turns(in_fleet, run):
                scenarios.fleet(bench, tool, run, plan.hosts)
    bench.relays.set_rtt(0)
    if via is not None:
        print(f"\n{plan.hosts} hosts behind one bastion: first deploy, ours only ({plan.bastion_runs} runs)")
        tool = tools.OursViaBastion(ours.project.parent / "ours-bastion", ours.access, bastion=via)
        for run in range(1, plan.bastion_runs + 1):
            scenarios.behind_bastion(bench, tool, run, plan.hosts, via.host)
    if plan.big_runs or plan.cap_big_runs:
        print(
            f"\nbig: first deploy of 1 GiB at 0 ms (ours {plan.big_runs} runs, Capistrano {plan.cap_big_runs})",
            flush=True,
        )
    both = [ours, *caps[:1]]
    for run in range(1, max(plan.big_runs, plan.cap_big_runs) + 1):
        for tool in scenarios.turns(both, run):
            if run <= (plan.big_runs if tool is ours else plan.cap_big_runs):
                scenarios.big(bench, tool, run)


def main(argv: list[str]) -> int:
    plan = parse(argv)
    if plan.report_from is not None:  # the report again, from a run's saved figures
        fields = saved.load(plan.report_from)
        return write_report(fields, plan.output, fields["samples"])
    preflight()
    started = datetime.now(timezone.utc)
    source_start = report.source_fingerprint(servers.REPO / "deployer")
    command = "python3 benchmarks/run.py" + ("" if not argv else " " + shlex.join(argv))
    print("building workloads (cached after the first run) ...", flush=True)
    built = workloads.build_all(CACHE, with_big=plan.big_runs > 0 or plan.cap_big_runs > 0)
    for w in built.values():
        print(f"  {w.name}: {workloads.describe(w)}")
    log_dir = CACHE / "logs" / started.strftime("%Y%m%dT%H%M%S")
    log_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="deployer-bench-") as scratch:
        folder = Path(scratch)
        noise_start = report.other_load(set())  # before ours start, which load the machine too
        print(f"starting {plan.hosts} sshd containers ...", flush=True)
        clock = time.monotonic()
        hosts, key, known_hosts = servers.start(plan.hosts, folder)
        own = {h.ssh.container_id for h in hosts}
        print(f"  ready in {time.monotonic() - clock:.1f} s (ports {', '.join(str(h.port) for h in hosts)})")
        via = None
        relays = relay.Relays([h.port for h in hosts])
        try:
            for host in hosts:
                host.relay_port = relays.port_for(host.port)
            servers.write_known_hosts(hosts, known_hosts)
            if plan.bastion_runs:
                via = servers.start_bastion(hosts, key, known_hosts)
                own.add(via.host.ssh.container_id)
            access = tools.Access(key, known_hosts)
            ours = tools.Ours(folder / "ours", access, parallel=plan.parallel)
            caps = tools.capistranos(folder, access)
            caps = [] if plan.ours_only else caps
            if plan.baseline is not None:
                code = str(plan.baseline.resolve())
                caps = [tools.Ours(folder / "base", access, "ours (baseline)", "base", code=code), *caps]
            bench = scenarios.Bench(hosts, built, log_dir, plan.timeout, relays)
            measure_all(bench, ours, caps, plan, via)
            noise_end = report.other_load(own)
        finally:
            print("removing the relays and the containers ...", flush=True)
            relays.close()
            if via is not None:
                servers.stop_bastion(via, via.network)
            servers.stop(hosts)
    fields = {
        "command": command,
        "started": started,
        "finished": datetime.now(timezone.utc),
        "versions": tools.versions(),
        "workloads": built,
        "samples": bench.samples,
        "fleet": scenarios.fleet_op(plan.hosts),
        "host_count": plan.hosts,
        "noise": (noise_start, noise_end),
        "notes": notes(plan, log_dir),
        "rtts": plan.rtts,
        "source": (source_start, report.source_fingerprint(servers.REPO / "deployer")),
    }
    saved.save(log_dir / "samples.json", fields)
    return write_report(fields, plan.output, bench.samples)


def write_report(fields: dict, output: Path, samples: list) -> int:
    text = report.document(**fields)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print("\n" + text)
    print(f"written to {output}")
    return 0 if all(s.ok for s in samples) else 1


def notes(plan: Plan, log_dir: Path) -> list[str]:
    """What a reader must know to read the figures right."""
    return [
        "Wall time is the whole process as a user runs it (`sternway deploy --stage=bench`, as `python3 -m deployer.program`; "
        "`cap bench deploy`), start-up included; the 1-host sequence per run is first deploy, identical "
        "redeploy, 1% redeploy, rollback, on a fresh `deploy_to`; the fleet and big deploys each get a fresh one too.",
        "Received bytes are eth0 rx of the container during the command: payload plus SSH framing, TCP/IP "
        "headers and the commands themselves. Rollback (no upload) shows that floor.",
        "Capistrano runs stock `deploy` / `deploy:rollback` with the upload_tarball plugin "
        "(benchmarks/capistrano/upload_tarball.rb): upload! the .tar.gz, tar -xzf into the release, rm. Its host keys are "
        "verified against the same known_hosts file (verify_host_key: :always). Its stock rollback also archives the "
        "rolled-back release with `tar -czf` on the server before deleting it; that is part of its measured time.",
        f"Ours runs with `parallel: {plan.hosts}` for the fleet deploy (its default is 10) because Capistrano "
        "works on every host at once by default.",
        f"Both tools run on the same CPUs as the {plan.hosts} containers' sshd and tar: the fleet figures measure "
        "the machine as much as the tools, for both alike.",
        "The bastion deploy goes to the same hosts by their names on an `--internal` Docker network that "
        "only the bastion (published on 127.0.0.1) shares with them; `logins on the bastion` counts its "
        "`Accepted publickey` lines in its own /var/log/sshd.log.",
        "Ours sends a host that has zstd a zstd copy of the artifact (`artifact.compression: auto`) when "
        "the copy is cached or the deploy reaches 4 or more such hosts (docs/scale.md). The copy is made "
        "during the first fleet deploy, so in a full run the 1-host deploys at 0 ms send the .tar.gz and "
        "those at 25 and 50 ms the cached zstd copy (10.1 MiB); Capistrano always sends the .tar.gz.",
        f"Every command's output is kept in `{log_dir.relative_to(HERE.parent)}` (gitignored).",
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
