"""The README's first command: the gateway's main job, end to end, in the lab.

Brings up the network-namespace lab (agents on a workload subnet, a gateway namespace with
the real ruleset and verdict engine, an upstream with HTTP/HTTPS servers and DNS), registers
two agents and leases their addresses, bundles, signs and publishes the lab policy
(``examples/lab``), then runs a scenario with real clients and prints what happened:

* an allowed request, over IPv4 and IPv6, and by name through the lab's DNS;
* a denied destination, and an agent the policy does not cover;
* an agent with no lease (unknown identity);
* a lease revoked while a download is running: the flow is cut;
* the engine killed: new flows are refused at once (fail-closed), then it comes back;
* then the policy by name (``examples/lab-names``): a flow decided by the name the agent
  resolved and the TLS SNI it sent, the same address without a name, a fake SNI on another
  allowed host's address (domain fronting), a denied name answered NXDOMAIN by the gateway,
  and an allowed name whose DNS answer points at the cloud metadata service (refused);
* then the policy with request rules (``examples/lab-l7``): HTTPS read by the L7 engine
  (intercepted with the gateway CA), a denied path (403), a throttled one (429), a method
  rule (git read allowed, push denied), the explicit proxy, and a CONNECT spliced
  untouched;
* then AI traffic (``examples/lab-ai``): a chat completion with the usage its answer
  reported, a model outside the allowlist (403), a secret in the prompt (blocked by DLP),
  an e-mail address redacted, a placeholder credential swapped for the provider's key, and
  requests until the token budget refuses one (429).

Each row shows the client's result and the decision the gateway audited for that flow.
Everything is removed at the end, whatever happens; the audit log is copied out first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gatewayd.lab.lab import Lab

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "examples" / "lab"
NAMES_POLICY = ROOT / "examples" / "lab-names"
L7_POLICY = ROOT / "examples" / "lab-l7"
AI_POLICY = ROOT / "examples" / "lab-ai"
PROXY = "http://10.77.0.1:3128"
CURL_RESULTS = {0: "ok", 6: "name not resolved", 7: "refused (reset)", 28: "timed out",
                35: "reset in the TLS handshake", 56: "cut (reset)"}


@dataclass
class Row:
    case: str
    agent: str
    destination: str
    client: str
    decision: str = "-"
    rule: str = "-"
    reason: str = "-"


class Demo:
    def __init__(self, lab: Lab, audit_copy: Path) -> None:
        self.lab = lab
        self.audit_copy = audit_copy
        self.rows: list[Row] = []
        self.cli = [sys.executable, "-m", "gatewayd", "--config", str(lab.config_path)]

    def clawgress(self, *args: str) -> str:
        shown = " ".join(["clawgress", *args]).replace(str(self.lab.state_dir), "$LAB")
        print(f"$ {shown}")
        proc = subprocess.run([*self.cli, *args], capture_output=True, text=True, check=False)
        out = (proc.stdout + proc.stderr).strip()
        if out:
            print("  " + out.replace("\n", "\n  "))
        if proc.returncode != 0:
            raise SystemExit(f"demo: `{shown}` failed with exit code {proc.returncode}")
        return proc.stdout

    def curl(self, agent: str, url: str, *extra: str) -> tuple[int, float, str]:
        argv = ["curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", *extra, url]
        start = time.monotonic()
        proc = self.lab.exec(agent, argv, capture_output=True, text=True)
        return proc.returncode, time.monotonic() - start, proc.stdout.strip()

    def audited(self, dst_port: int, agent_ip: str) -> dict[str, object] | None:
        """The newest verdict the gateway audited for a flow from ``agent_ip``."""
        path = self.audit_path()
        if not path.exists():
            return None
        found = None
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if (event.get("kind") == "flow.verdict" and event.get("src_ip") == agent_ip
                    and event.get("dst_port") == dst_port):
                found = event
        return found

    def audit_path(self) -> Path:
        return self.lab.state_dir / "audit.log"

    def case(self, case: str, agent: str, url: str, agent_ip: str, port: int,
             *extra: str) -> Row:
        time.sleep(0.05)  # let the audit line land
        code, took, status = self.curl(agent, url, *extra)
        client = CURL_RESULTS.get(code, f"curl exit {code}")
        if code == 0:
            client = f"HTTP {status}"
        row = Row(case, agent, url, f"{client} in {took * 1000:.0f} ms")
        time.sleep(0.05)
        event = self.audited(port, agent_ip)
        if event is not None:
            row.decision = str(event["action"])
            if event.get("rule_id"):
                row.rule = f"{event['policy_id']}/{event['rule_id']}"
            shadow = event.get("shadow")
            row.reason = str(event["reason"]) + (
                f" [shadow: {shadow['action']} by {shadow['rule_id']}]"  # type: ignore[index]
                if shadow else "")
            if event.get("sni"):
                row.reason += f" [SNI {event['sni']}, {event['ja4']}]"
        self.rows.append(row)
        return row

    def run(self) -> None:
        lab = self.lab
        a1, a2 = lab.agent_address(1), lab.agent_address(2)
        print(f"lab up: agents {a1.v4}, {a2.v4}, {lab.agent_address(3).v4};"
              f" state in {lab.state_dir}\n")
        self.clawgress("agent", "add", "researcher", "--team", "research", "--project",
                       "alpha", "--env", "lab")
        self.clawgress("agent", "add", "ops-bot", "--team", "ops", "--project", "infra",
                       "--env", "lab")
        self.clawgress("lease", "grant", str(a1.v4), "--agent", "researcher", "--ttl", "1h")
        self.clawgress("lease", "grant", str(a1.v6), "--agent", "researcher", "--ttl", "1h")
        self.clawgress("lease", "grant", str(a2.v4), "--agent", "ops-bot", "--ttl", "1h")
        bundle = str(lab.state_dir / "lab-policy.tgz")
        self.clawgress("policy", "bundle", str(POLICY), "-o", bundle, "--version", "1")
        self.clawgress("policy", "sign", bundle, "--key", str(lab.signing_key))
        self.clawgress("policy", "publish", bundle)
        time.sleep(0.6)  # the engine follows the store every 250 ms
        print("\nrunning the scenario ...")
        api, paste = lab.addresses["api.openai.com"], lab.addresses["pastebin.com"]
        self.case("allowed", "a1", f"https://{api.v4}/", str(a1.v4), 443, "-k")
        self.case("allowed, IPv6", "a1", f"https://[{api.v6}]/", str(a1.v6), 443, "-k")
        self.case("allowed, by name", "a1", "https://api.openai.com/", str(a1.v6), 443)
        self.case("denied destination", "a1", f"http://{paste.v4}/", str(a1.v4), 80)
        self.case("not their team", "a2", f"https://{api.v4}/", str(a2.v4), 443, "-k")
        self.case("no lease (unknown)", "a3", f"https://{api.v4}/", str(lab.agent_address(3).v4),
                  443, "-k")
        raw = lab.addresses["raw.githubusercontent.com"]
        self.case("allowed, shadow rule", "a2", f"https://{raw.v4}/", str(a2.v4), 443, "-k")
        self.revoke_during_download(str(a1.v4), f"http://{api.v4}/stream?seconds=20")
        self.engine_killed(str(a2.v4), f"https://{lab.addresses['github.com'].v4}/")
        self.by_name()

    def by_name(self) -> None:
        lab = self.lab
        print("\npublishing the policy by name (examples/lab-names) ...")
        self.clawgress("lease", "grant", str(lab.agent_address(1).v4), "--agent",
                       "researcher", "--ttl", "1h")
        bundle = str(lab.state_dir / "names-policy.tgz")
        self.clawgress("policy", "bundle", str(NAMES_POLICY), "-o", bundle, "--version", "2")
        self.clawgress("policy", "sign", bundle, "--key", str(lab.signing_key))
        self.clawgress("policy", "publish", bundle)
        time.sleep(0.6)
        a1 = str(lab.agent_address(1).v4)
        api, github = lab.addresses["api.openai.com"], lab.addresses["github.com"]
        self.case("by name: DNS + SNI", "a1", "https://api.openai.com/", a1, 443, "-4")
        self.case("same address, no name", "a1", f"https://{api.v4}/", a1, 443, "-k")
        self.case("by name: code hosting", "a1", "https://github.com/", a1, 443, "-4")
        self.case("fake SNI (fronting)", "a1", "https://api.openai.com/", a1, 443, "-4",
                  "--resolve", f"api.openai.com:443:{github.v4}")
        self.dns_case("denied name", "a1", "https://pastebin.com/", "dns.denied")
        self.dns_case("name -> metadata IP", "a1", "https://metadata.lab/", "dns.refused")
        self.l7()
        self.ai()

    def l7(self) -> None:
        lab = self.lab
        print("\npublishing the policy with request rules (examples/lab-l7) ...")
        bundle = str(lab.state_dir / "l7-policy.tgz")
        self.clawgress("policy", "bundle", str(L7_POLICY), "-o", bundle, "--version", "3")
        self.clawgress("policy", "sign", bundle, "--key", str(lab.signing_key))
        self.clawgress("policy", "publish", bundle)
        time.sleep(0.6)
        a1, a2 = str(lab.agent_address(1).v4), str(lab.agent_address(2).v4)
        self.l7_case("L7: HTTPS intercepted", "a1", a1, "https://api.openai.com/v1/models")
        self.l7_case("L7: denied path", "a1", a1, "https://api.openai.com/admin/keys")
        self.l7_case("L7: throttled path", "a1", a1, "https://api.openai.com/throttled/x")
        self.l7_case("L7: git read (GET)", "a2", a2, "https://github.com/")
        self.l7_case("L7: git push (POST)", "a2", a2,
                     "https://github.com/org/repo.git/git-receive-pack", "-X", "POST",
                     "--data-binary", "0000")
        self.l7_case("L7: explicit proxy", "a1", a1, "https://api.openai.com/v1/models",
                     "-x", PROXY)
        self.l7_case("L7: CONNECT, spliced", "a2", a2, "https://raw.githubusercontent.com/",
                     "-x", PROXY, kind="tls.decision")

    def ai(self) -> None:
        lab = self.lab
        print("\npublishing the policy for AI traffic and its budget (examples/lab-ai) ...")
        bundle = str(lab.state_dir / "ai-policy.tgz")
        self.clawgress("policy", "bundle", str(AI_POLICY), "-o", bundle, "--version", "4")
        self.clawgress("policy", "sign", bundle, "--key", str(lab.signing_key))
        self.clawgress("policy", "publish", bundle)
        key_file = lab.state_dir / "demo-openai.key"
        key_file.write_text("sk-proj-" + "DemoProviderKey" * 3 + "T3BlbkFJ" + "x" * 20 + "\n")
        key_file.chmod(0o600)
        self.clawgress("credential", "add", "openai-demo", "--provider", "openai",
                       "--host", "api.openai.com", "--key-file", str(key_file))
        issued = json.loads(self.clawgress("credential", "placeholder", "issue",
                                           "openai-demo", "--agent", "researcher", "--json"))
        placeholder = str(issued["placeholder"])
        key_file.unlink()
        time.sleep(1.0)
        a1 = str(lab.agent_address(1).v4)
        chat = "https://api.openai.com/v1/chat/completions"
        self.ai_case("AI: chat completion", a1, chat, "lab-model", "say hello")
        self.ai_case("AI: model not allowed", a1, chat, "gpt-unlisted", "say hello")
        self.ai_case("AI: secret in the prompt", a1, chat, "lab-model",
                     "deploy with AKIAQYLPMN5HHHFPZAM2 please")
        self.ai_case("AI: e-mail redacted", a1, chat, "lab-model",
                     "write to jane.doe@example.org about MRN 44813327")
        self.ai_case("AI: placeholder key", a1, "https://api.openai.com/headers", None, "",
                     "-H", f"Authorization: Bearer {placeholder}")
        for _ in range(12):
            if self.ai_case("AI: over the budget", a1, chat, "lab-model",
                            "count these tokens against the budget", keep=False) == "429":
                break
        else:
            raise SystemExit("demo: the token budget never ran out")

    def ai_case(self, case: str, agent_ip: str, url: str, model: str | None, text: str,
                *extra: str, keep: bool = True) -> str:
        """A request to the lab's OpenAI API from a1; the row says what the record says
        the analyzer, DLP, the credential and the quota did. ``keep``: show it even when
        it is only one step to the row that matters."""
        body = ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                json.dumps({"model": model, "max_tokens": 16,
                            "messages": [{"role": "user", "content": text}]})] if model else []
        code, took, status = self.curl("a1", url, "-4", *body, *extra)
        client = f"HTTP {status}" if code == 0 else CURL_RESULTS.get(code, f"curl exit {code}")
        row = Row(case, "a1", url, f"{client} in {took * 1000:.0f} ms")
        time.sleep(0.4)
        for line in reversed(self.audit_path().read_text().splitlines()):
            event = json.loads(line)
            if event.get("kind") != "http.request" or event.get("src_ip") != agent_ip:
                continue
            flags = event.get("flags") or []
            row.decision = ("quota" if status == "429" else
                            "DLP block" if "dlp-blocked" in flags else str(event["action"]))
            if event.get("rule_id"):
                row.rule = f"{event['policy_id']}/{event['rule_id']}"
            row.reason = _ai_reason(event)
            break
        if keep or status == "429":
            self.rows.append(row)
        return status

    def l7_case(self, case: str, agent: str, agent_ip: str, url: str, *extra: str,
                kind: str = "http.request") -> None:
        """A request the L7 engine decided: its record (the newest of ``kind`` from
        ``agent_ip``) is the row's."""
        code, took, status = self.curl(agent, url, "-4", *extra)
        client = f"HTTP {status}" if code == 0 else CURL_RESULTS.get(code, f"curl exit {code}")
        row = Row(case, agent, url, f"{client} in {took * 1000:.0f} ms")
        time.sleep(0.4)  # the engine writes its records within a reload interval
        for line in reversed(self.audit_path().read_text().splitlines()):
            event = json.loads(line)
            if (event.get("kind") != kind or event.get("src_ip") != agent_ip
                    or event.get("method") == "CONNECT"):  # the tunnel's own record
                continue
            row.decision = str(event["action"])
            if event.get("rule_id"):
                row.rule = f"{event['policy_id']}/{event['rule_id']}"
            how = event.get("tls") if kind == "tls.decision" else (
                f"{event['method']} {event['path']} via {event['via']}, TLS {event['tls']}")
            row.reason = f"{event['reason']} [{how}]"
            break
        self.rows.append(row)

    def dns_case(self, case: str, agent: str, url: str, kind: str) -> None:
        """A request whose name the gateway answered itself: the DNS record is the row's."""
        code, took, _ = self.curl(agent, url, "-4")
        row = Row(case, agent, url, f"{CURL_RESULTS.get(code, f'curl exit {code}')} in"
                  f" {took * 1000:.0f} ms")
        time.sleep(0.05)
        for line in reversed(self.audit_path().read_text().splitlines()):
            event = json.loads(line)
            if event.get("kind") != kind:
                continue
            if kind == "dns.denied":
                row.decision = f"DNS {event['answer']}"
                row.rule = f"{event['policy_id']}/{event['rule_id']}"
                row.reason = f"{event['name']}: {event['reason']}"
            else:
                refused = event["refused"][0]
                row.decision = "DNS refused"
                row.reason = (f"{refused['name']} -> {refused['address']}"
                              f" ({refused['class']}): rebinding")
            break
        self.rows.append(row)

    def revoke_during_download(self, agent_ip: str, url: str) -> None:
        print("\na download from a1, and its lease revoked 1 s in ...")
        argv = ["curl", "-s", "-o", "/dev/null", "-m", "15", url]
        started = time.monotonic()
        download = self.lab.popen("a1", argv)
        time.sleep(1.0)
        self.clawgress("lease", "revoke", agent_ip)
        revoked = time.monotonic()
        code = download.wait(timeout=20)
        cut = time.monotonic()
        client = CURL_RESULTS.get(code, f"curl exit {code}")
        self.rows.append(Row(
            "lease revoked mid-download", "a1", url,
            f"{client} {(cut - revoked) * 1000:.0f} ms after the revoke"
            f" ({cut - started:.1f} s in)",
            "flow ended", "-", self.ended_reason(agent_ip)))

    def ended_reason(self, agent_ip: str) -> str:
        for line in reversed(self.audit_path().read_text().splitlines()):
            event = json.loads(line)
            if event.get("kind") == "flow.ended" and event.get("src_ip") == agent_ip:
                return str(event["reason"])
        return "-"

    def engine_killed(self, agent_ip: str, url: str) -> None:
        print("\nkilling the verdict engine (fail-closed environment) ...")
        self.lab.stop_engine(signal.SIGKILL)
        code, took, _ = self.curl("a2", url, "-k")
        self.rows.append(Row("engine down (fail-closed)", "a2", url,
                             f"{CURL_RESULTS.get(code, code)} in {took * 1000:.1f} ms",
                             "deny", "-", "no engine answered: the fail-closed rule reset it"))
        self.lab.start_engine()
        print("engine restarted")
        self.case("engine back", "a2", url, agent_ip, 443, "-k")

    def print_table(self) -> None:
        cols = ["case", "agent", "destination", "client", "decision", "rule", "reason"]
        rows = [[getattr(r, c) for c in cols] for r in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        print()
        print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _ai_reason(event: dict[str, object]) -> str:
    """What a request's record says the AI analyzer, DLP, the credential stage and the
    quotas did (never a value: the record holds none)."""
    said = [str(event.get("reason"))]
    ai, usage = event.get("ai"), event.get("ai_usage")
    if isinstance(ai, dict) and ai.get("model"):
        said.append(f"model {ai['model']}")
    if isinstance(usage, dict) and isinstance(usage.get("usage"), dict):
        said.append(f"{usage['usage'].get('total_tokens')} tokens reported")
    dlp = event.get("dlp")
    if isinstance(dlp, dict):
        done = [f"{what} {', '.join(dlp[what])}" for what in ("blocked", "redacted", "hashed")
                if dlp.get(what)]
        said.append("DLP " + ("; ".join(done) or ", ".join(dlp.get("classes", []))))
    credential = event.get("credential")
    if isinstance(credential, dict):
        said.append(f"{credential.get('placeholder')} swapped for credential"
                    f" {credential.get('credential')}")
    return "; ".join(s for s in said if s and s != "None")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="leave the lab up at the end")
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="clawgress-demo-"))
    audit_copy = Path(tempfile.gettempdir()) / "clawgress-demo-audit.jsonl"
    lab = Lab("cg-demo", state / "lab", agents=3)
    try:
        lab.up(engine=True)
        demo = Demo(lab, audit_copy)
        demo.run()
        demo.print_table()
        shutil.copyfile(demo.audit_path(), audit_copy)
        events = len(audit_copy.read_text().splitlines())
        print(f"\naudit log: {events} events, copied out of the lab to {audit_copy}")
        return 0
    finally:
        if args.keep:
            print(f"the lab is still up: clawgress lab status --state {lab.state_dir}")
        else:
            lab.down()
            shutil.rmtree(state, ignore_errors=True)
            print("lab down: nothing left behind")


if __name__ == "__main__":
    sys.exit(main())
