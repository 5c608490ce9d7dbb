"""The README's first command: the policy engine end to end on the example bundle.

Builds a throwaway gateway home in a temporary folder (configuration, store, signing key),
bundles, signs and publishes ``examples/policy``, registers agents and leases, then asks
the gateway for decisions through the real ``clawgress`` CLI and prints them as a table.
It also shows a tampered bundle being refused while the published one stays active.
Everything it creates is removed at the end (``--keep`` keeps the folder).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAWGRESS = [sys.executable, "-m", "gatewayd"]

CONFIG = """\
gateway:
  name: demo
  addresses: [10.20.0.1]
workload:
  interfaces:
    - {name: wl-prod, subnets: [10.20.0.0/24], environment: prod}
    - {name: wl-dev, subnets: [10.30.0.0/24], environment: dev}
environments:
  prod: {fail_mode: fail-closed}
  dev: {fail_mode: fail-open}
store: {path: state/clawgress.db}
audit: {path: state/audit.log}
policy:
  trusted_keys: [keys/policy.pub]
  last_known_good: state/last-known-good.bundle
"""

AGENTS = [
    ("researcher", "research", "alpha", "prod", "10.20.0.11", "wl-prod"),
    ("ops-bot", "ops", "infra", "dev", "10.30.0.12", "wl-dev"),
]

# (agent, destination, extra `policy test` flags, what it shows)
CASES: list[tuple[str, str, list[str], str]] = [
    ("researcher", "api.openai.com:443", ["--ip", "203.0.113.10"],
     "first packet: a tool rule needs L7"),
    ("researcher", "api.openai.com:443", ["--layer", "l7", "--method", "POST", "--path",
     "/v1/chat/completions", "--tool", "web.search"], "L7: chat call, harmless tool"),
    ("researcher", "api.openai.com:443", ["--layer", "l7", "--method", "POST", "--path",
     "/v1/chat/completions", "--tool", "shell.exec"], "L7: shell tool call"),
    ("ops-bot", "api.openai.com:443", [], "not their team"),
    ("researcher", "pastebin.com:443", [], "exfiltration site"),
    ("ops-bot", "github.com:443", [], "allowed, with a shadow rule"),
    ("researcher", "raw.githubusercontent.com:443", ["--ip", "169.254.169.254"],
     "allowed name, metadata address"),
    ("researcher", "10.40.1.5:9090", [], "internal metrics by CIDR and port range"),
]


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    shown = " ".join(["clawgress", *args])
    print(f"$ {shown}")
    proc = subprocess.run([*CLAWGRESS, "--config", "gateway.yaml", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).strip()
    if out and args[-1] != "--json":
        print("  " + out.replace("\n", "\n  "))
    if check and proc.returncode != 0:
        raise SystemExit(f"demo: `{shown}` failed with exit code {proc.returncode}")
    return proc


def table(rows: list[dict[str, str]], cols: list[str]) -> None:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in cols))


def tamper(src: Path, dst: Path) -> None:
    """A copy of the bundle with one policy document changed after signing."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for member in tin.getmembers():
            f = tin.extractfile(member)
            data = f.read() if f else b""
            if member.name.endswith("baseline.yaml"):
                data = data.replace(b"pastebin.com, ", b"")
            member.size = len(data)
            tout.addfile(member, io.BytesIO(data))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", action="store_true", help="keep the demo folder")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="clawgress-demo-"))
    try:
        (home / "gateway.yaml").write_text(CONFIG)
        print(f"demo gateway home: {home}\n")
        run(["keys", "generate", "policy", "--dir", "keys"], home)
        run(["policy", "bundle", str(ROOT / "examples/policy"), "-o", "bundle-v1.tgz",
             "--version", "1"], home)
        run(["policy", "sign", "bundle-v1.tgz", "--key", "keys/policy.key"], home)
        run(["policy", "publish", "bundle-v1.tgz"], home)
        for agent, team, project, env, ip, iface in AGENTS:
            run(["agent", "add", agent, "--team", team, "--project", project, "--env", env], home)
            run(["lease", "grant", ip, "--agent", agent, "--iface", iface, "--ttl", "1h"], home)
        print()
        rows = []
        for agent, dest, extra, what in CASES:
            proc = run(["policy", "test", "--agent", agent, "--dest", dest, *extra, "--json"],
                       home)
            d = json.loads(proc.stdout)["decision"]
            rule = f"{d['policy_id']}/{d['rule_id']}" if d["rule_id"] else "-"
            shadow = d.get("shadow")
            note = f" [shadow: {shadow['action']} by {shadow['rule_id']}]" if shadow else ""
            rows.append({"agent": agent, "destination": dest, "case": what,
                         "decision": d["action"], "rule": rule,
                         "reason": d["reason"] + note})
        print("\nDecisions of the published bundle:\n")
        table(rows, ["agent", "destination", "case", "decision", "rule", "reason"])
        print("\nA bundle altered after signing is refused; the active one stays:")
        tamper(home / "bundle-v1.tgz", home / "bundle-tampered.tgz")
        bad = run(["policy", "publish", "bundle-tampered.tgz"], home, check=False)
        if bad.returncode == 0:
            raise SystemExit("demo: a tampered bundle was accepted")
        run(["policy", "active"], home)
        print(f"\nstore: {home / 'state/clawgress.db'}")
        return 0
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
