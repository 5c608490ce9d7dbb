"""The labelled DLP corpus: synthetic positives for every class, and hard negatives.

Generated, not stored: ``build_corpus(seed)`` is deterministic for a seed (Faker and
``random.Random`` are both seeded), so the tests and ``tools/bench/dlp.py`` measure the same
bodies, and no secret-shaped string is ever committed. Secrets are synthetic and marked so
(``FAKE``, ``fake-``, ``example`` hosts) but format-correct: checksums (GitHub's CRC-32,
Luhn, mod-97, NPI, DEA) are computed, JWTs are signed, private keys are real keys made for
the run. Each positive is a sentence around the value, in a realistic LLM request body
(OpenAI chat completions, Anthropic messages, a tool call's JSON arguments, plain text),
sometimes base64- or URL-encoded or JSON-escaped, among filler prose and code. Negatives
are what a DLP engine must not flag: UUIDs, hashes, base64 blobs, version strings, invoice
numbers, source code, lorem ipsum, dates without a birth cue, near-misses that fail a
checksum or a range, and cue words without a value.

``score(scanner, corpus)`` counts, per class, true positives (a match whose value is a
labelled value of its class), false positives and missed labels.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from faker import Faker

from gatewayd.dlp import Scanner

SEED = 20261124
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Label:
    dlp_class: str
    value: str


@dataclass(frozen=True)
class Sample:
    name: str
    body: bytes
    content_type: str
    labels: tuple[Label, ...] = ()


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    labels: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return (self.labels - self.fn) / self.labels if self.labels else 1.0


# ---- checksummed values -------------------------------------------------------------------


def luhn_digit(partial: str) -> str:
    total = 0
    for i, c in enumerate(reversed(partial)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def github_token(rng: random.Random, prefix: str = "ghp") -> str:
    body = "FAKE" + "".join(rng.choice(ALNUM) for _ in range(26))
    return f"{prefix}_{body}{base62(binascii.crc32(body.encode()), 6)}"


def npi(rng: random.Random) -> str:
    first9 = rng.choice("12") + "".join(rng.choice(string.digits) for _ in range(8))
    return first9 + luhn_digit("80840" + first9)


def dea(rng: random.Random) -> str:
    letters = rng.choice("ABFGMPR") + rng.choice(string.ascii_uppercase)
    d = [rng.randrange(10) for _ in range(6)]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return letters + "".join(map(str, d)) + str(check)


def card(rng: random.Random) -> str:
    kind = rng.choice(("visa", "mastercard", "mastercard2", "amex", "discover", "jcb",
                       "diners", "unionpay"))
    prefix, length = {
        "visa": ("4", 16), "mastercard": (str(rng.randint(51, 55)), 16),
        "mastercard2": (str(rng.randint(2221, 2720)), 16),
        "amex": (rng.choice(("34", "37")), 15), "discover": ("6011", 16),
        "jcb": (str(rng.randint(3528, 3589)), 16), "diners": (rng.choice(("36", "300")), 14),
        "unionpay": ("62", 16),
    }[kind]
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    style = rng.random()
    if style < 0.4:
        return number
    sep = " " if style < 0.75 else "-"
    groups = {15: (4, 6, 5), 14: (4, 6, 4)}.get(length, (4, 4, 4, 4))
    out, pos = [], 0
    for g in groups:
        out.append(number[pos:pos + g])
        pos += g
    return sep.join(out)


def iban_grouped(code: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return code
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(rng: random.Random, fake: Faker) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": f"fake-user-{rng.randrange(10**6)}", "name": fake.name(),
              "iat": 1700000000 + rng.randrange(10**7), "iss": "https://auth.fake.example"}
    payload = b64url(json.dumps(claims).encode())
    sig = hmac.new(b"not-a-secret", f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def _probable_prime(rng: random.Random, bits: int) -> int:
    while True:
        n = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
        if all(n % p for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)) and all(
                pow(a, n - 1, n) == 1 for a in (2, 3, 5, 7, 11)):
            return n


@cache
def _rsa_pem(seed: int) -> str:
    """A 1024-bit RSA key made from a seed (deterministic, unlike ``generate_private_key``)."""
    rng = random.Random(seed)
    e = 65537
    while True:
        p, q = _probable_prime(rng, 512), _probable_prime(rng, 512)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e:
            break
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()


def private_key(rng: random.Random) -> str:
    """A real private key, derived from ``rng``: PKCS#8, OpenSSH, SEC1 (EC) or PKCS#1 (RSA)."""
    kind = rng.choice(("pkcs8", "openssh", "ec", "rsa"))
    if kind == "rsa":
        return _rsa_pem(rng.randrange(4))
    if kind == "ec":
        key = ec.derive_private_key(rng.getrandbits(250) + 1, ec.SECP256R1())
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption()).decode()
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    if kind == "openssh":
        return _fixed_checkint(ed.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption()).decode(), rng.randbytes(4))
    return ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()


def _fixed_checkint(pem: str, check: bytes) -> str:
    """An OpenSSH key with its random check integers replaced (so the corpus is stable)."""
    lines = pem.strip().splitlines()
    raw = bytearray(base64.b64decode("".join(lines[1:-1])))
    off = len(b"openssh-key-v1\0")
    for _ in range(3):  # cipher name, KDF name, KDF options
        off += 4 + int.from_bytes(raw[off:off + 4], "big")
    off += 4  # number of keys
    off += 4 + int.from_bytes(raw[off:off + 4], "big")  # public key
    off += 4  # length of the private section
    raw[off:off + 8] = check + check
    body = base64.b64encode(bytes(raw)).decode()
    wrapped = [body[i:i + 70] for i in range(0, len(body), 70)]
    return "\n".join([lines[0], *wrapped, lines[-1]]) + "\n"


def rand(rng: random.Random, chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def mixed(rng: random.Random, n: int, chars: str = ALNUM) -> str:
    """Random characters with at least one upper-case letter, lower-case letter and digit."""
    while True:
        value = rand(rng, chars, n)
        if (any(c.isupper() for c in value) and any(c.islower() for c in value)
                and any(c.isdigit() for c in value)):
            return value


# ---- positives: (text around the value, labels) ---------------------------------------------

Snippet = tuple[str, list[Label]]


def _one(cls: str, value: str, templates: Iterable[str], rng: random.Random) -> Snippet:
    return rng.choice(list(templates)).format(v=value), [Label(cls, value)]


def positives(fake: Faker, rng: random.Random) -> dict[str, Callable[[], Snippet]]:
    f_us, f_gb, f_de, f_fr, f_nl, f_es = (fake["en_US"], fake["en_GB"], fake["de_DE"],
                                          fake["fr_FR"], fake["nl_NL"], fake["es_ES"])

    def aws_key() -> Snippet:
        v = rng.choice(("AKIA", "ASIA")) + "FAKE" + rand(rng, B32, 12)
        return _one("secrets.aws.access_key_id", v, (
            "export AWS_ACCESS_KEY_ID={v}", "aws_access_key_id = {v}",
            "The access key I use is {v}, can you check its permissions?",
            'creds = {{"AccessKeyId": "{v}"}}'), rng)

    def aws_secret() -> Snippet:
        key = "AKIA" + "FAKE" + rand(rng, B32, 12)
        secret = mixed(rng, 40, B64)
        text = rng.choice((
            "[default]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n",
            "AWS credentials: key {k} secret {s}",
            "export AWS_ACCESS_KEY_ID={k}\nexport AWS_SECRET_ACCESS_KEY={s}",
        )).format(k=key, s=secret)
        return text, [Label("secrets.aws.access_key_id", key),
                      Label("secrets.aws.secret_access_key", secret)]

    def gcp_sa() -> Snippet:
        project = f"fake-project-{rng.randrange(10**4)}"
        key_id = rand(rng, "0123456789abcdef", 40)
        pem = private_key(rng)
        email = f"fake-sa@{project}.iam.gserviceaccount.com"
        doc = json.dumps({
            "type": "service_account", "project_id": project, "private_key_id": key_id,
            "private_key": pem, "client_email": email,
            "client_id": str(rng.randrange(10**20, 10**21)),
            "token_uri": "https://oauth2.googleapis.com/token"}, indent=2)
        start = doc.index("-----BEGIN")
        end = doc.index("-----", doc.index("-----END") + 8) + 5
        text = "Why does this service account key fail to authenticate?\n" + doc
        return text, [Label("secrets.gcp.service_account_key", key_id),
                      Label("secrets.private_key", doc[start:end]),
                      Label("pii.email", email)]

    def gcp_api() -> Snippet:
        v = "AIza" + "FAKE" + rand(rng, ALNUM + "_-", 30) + rng.choice(ALNUM)
        return _one("secrets.gcp.api_key", v, (
            "const MAPS_KEY = '{v}';", "the Google API key {v} stopped working",
            "GOOGLE_API_KEY={v}"), rng)

    def azure_conn() -> Snippet:
        if rng.random() < 0.6:
            v = (f"DefaultEndpointsProtocol=https;AccountName=fakestore{rng.randrange(999)};"
                 f"AccountKey={mixed(rng, 86, B64)}==;EndpointSuffix=core.windows.net")
        else:
            v = (f"Endpoint=sb://fake-ns-{rng.randrange(999)}.servicebus.windows.net/;"
                 f"SharedAccessKeyName=RootManageSharedAccessKey;"
                 f"SharedAccessKey={mixed(rng, 43, B64)}=")
        return _one("secrets.azure.connection_string", v, (
            'AZURE_CONNECTION_STRING="{v}"', "Connection string: {v}",
            "var conn = \"{v}\";"), rng)

    def azure_key() -> Snippet:
        v = mixed(rng, 86, B64) + "=="
        return _one("secrets.azure.storage_key", v, (
            "Azure storage account key: {v}", "AccountKey {v}",
            "the storage key is {v} for the fake account"), rng)

    def azure_secret() -> Snippet:
        v = mixed(rng, 3) + str(rng.randrange(10)) + "Q~" + mixed(rng, 34, ALNUM + "_~.-")
        while v[-1] in ".-~_":
            v = v[:-1] + rng.choice(ALNUM)
        return _one("secrets.azure.client_secret", v, (
            "Entra app registration client secret {v}", "AZURE_CLIENT_SECRET={v}",
            "use {v} as the app's secret"), rng)

    def github() -> Snippet:
        if rng.random() < 0.8:
            v = github_token(rng, rng.choice(("ghp", "gho", "ghs", "ghu", "ghr")))
        else:
            v = f"github_pat_FAKE{rand(rng, ALNUM, 18)}_{rand(rng, ALNUM, 59)}"
        return _one("secrets.github.token", v, (
            "git clone https://{v}@github.com/fake-org/repo.git", "GITHUB_TOKEN={v}",
            "my token {v} gets a 403", 'headers = {{"Authorization": "token {v}"}}'), rng)

    def gitlab() -> Snippet:
        v = "glpat-" + "FAKE" + rand(rng, ALNUM + "_-", 15) + rng.choice(ALNUM)
        return _one("secrets.gitlab.token", v, (
            "PRIVATE-TOKEN: {v}", "gitlab token {v}", "CI_JOB_TOKEN={v}"), rng)

    def slack_token() -> Snippet:
        if rng.random() < 0.6:
            v = (f"xoxb-{rand(rng, string.digits, 11)}-{rand(rng, string.digits, 13)}-"
                 f"FAKE{rand(rng, ALNUM, 20)}")
        else:
            v = (f"xoxp-{rand(rng, string.digits, 11)}-{rand(rng, string.digits, 12)}-"
                 f"{rand(rng, string.digits, 13)}-{rand(rng, '0123456789abcdef', 32)}")
        return _one("secrets.slack.token", v, (
            "SLACK_BOT_TOKEN={v}", "post with the token {v} to #alerts",
            'client = WebClient(token="{v}")'), rng)

    def slack_hook() -> Snippet:
        v = (f"https://hooks.slack.com/services/T{rand(rng, B32, 9)}/B{rand(rng, B32, 9)}/"
             f"FAKE{rand(rng, ALNUM, 20)}")
        return _one("secrets.slack.webhook", v, (
            "curl -X POST -d '{{\"text\":\"hi\"}}' {v}", "webhook_url: {v}",
            "send build alerts to {v}"), rng)

    def stripe() -> Snippet:
        v = (rng.choice(("sk_live_", "sk_test_", "rk_live_", "rk_test_")) + "FAKE"
             + rand(rng, ALNUM, rng.randint(20, 60)))
        return _one("secrets.stripe.key", v, (
            "stripe.api_key = '{v}'", "STRIPE_SECRET_KEY={v}",
            "charging with {v} returns an error"), rng)

    def openai() -> Snippet:
        if rng.random() < 0.7:
            v = (f"sk-proj-FAKE{rand(rng, ALNUM + '_-', 60)}T3BlbkFJ"
                 f"{rand(rng, ALNUM + '_-', 63)}{rng.choice(ALNUM)}")
        else:
            v = f"sk-FAKE{rand(rng, ALNUM, 16)}T3BlbkFJ{rand(rng, ALNUM, 20)}"
        return _one("secrets.openai.api_key", v, (
            "OPENAI_API_KEY={v}", "client = OpenAI(api_key=\"{v}\")",
            "why is {v} rate limited?"), rng)

    def anthropic() -> Snippet:
        v = f"sk-ant-api03-FAKE{rand(rng, ALNUM + '_-', 89)}AA"
        return _one("secrets.anthropic.api_key", v, (
            "ANTHROPIC_API_KEY={v}", "x-api-key: {v}", "the key {v} returns 401"), rng)

    def jwt_token() -> Snippet:
        v = jwt(rng, f_us)
        return _one("secrets.jwt", v, (
            "Authorization: Bearer {v}", "decode this token: {v}",
            "session cookie value {v}"), rng)

    def pem() -> Snippet:
        v = private_key(rng)
        return _one("secrets.private_key", v.strip(), (
            "Here is my deploy key, why does ssh reject it?\n{v}\nThanks.",
            "key.pem:\n{v}", "{v}"), rng)

    def db_url() -> Snippet:
        scheme = rng.choice(("postgres", "postgresql", "mysql", "mongodb+srv", "redis",
                             "amqp"))
        v = (f"{scheme}://{f_us.user_name()}:{mixed(rng, rng.randint(12, 24))}@"
             f"db{rng.randrange(99)}.fake-corp.internal:{rng.choice((5432, 3306, 6379))}/app")
        return _one("secrets.database_url", v, (
            "DATABASE_URL={v}", "connect with {v} and run the migration",
            'engine = create_engine("{v}")'), rng)

    def generic() -> Snippet:
        value = mixed(rng, rng.randint(20, 40))
        name = rng.choice(("api_key", "API_KEY", "client_secret", "auth_token", "SECRET_KEY",
                           "password", "db_password", "x-api-key", "apiKey", "access_token"))
        if rng.random() < 0.2:
            return _one("secrets.generic", value, (
                "Authorization: Bearer {v}", "curl -H 'Authorization: Bearer {v}' url"), rng)
        return _one("secrets.generic", value, (
            f'{name} = "{{v}}"', f"{name}: {{v}}", f"{name}={{v}}", f'"{name}": "{{v}}"',
            f"set {name} to '{{v}}' in the config"), rng)

    def email() -> Snippet:
        v = rng.choice((f_us.email, f_us.company_email, f_gb.free_email, f_de.email))()
        return _one("pii.email", v, (
            "Please email {v} about the invoice.", "Contact: {v}", "cc {v}",
            "From: {name} <{v}>".replace("{name}", f_us.name()),
            "send the report to {v} by Friday"), rng)

    def phone() -> Snippet:
        area = rng.randint(2, 9) * 100 + rng.randint(0, 99)
        while area % 100 == 11:
            area += 1
        ex = rng.randint(200, 999)
        while ex % 100 == 11:
            ex += 1
        last = f"{rng.randrange(10000):04d}"
        v = rng.choice((
            f"({area}) {ex}-{last}", f"{area}-{ex}-{last}", f"{area}.{ex}.{last}",
            f"+1 {area}-{ex}-{last}", f"+1{area}{ex}{last}", f"+1 ({area}) {ex}-{last}",
            f"+44 20 {rng.randint(7000, 8999)} {rng.randrange(10000):04d}",
            f"020 {rng.randint(7000, 8999)} {rng.randrange(10000):04d}",
            f"07{rng.randint(100, 999)} {rng.randrange(10**6):06d}",
            f"+447{rng.randint(100, 999)}{rng.randrange(10**6):06d}",
            f"0{rng.randint(1, 7)} " + " ".join(f"{rng.randrange(100):02d}" for _ in range(4)),
            f"+33 {rng.randint(1, 7)} " + " ".join(
                f"{rng.randrange(100):02d}" for _ in range(4)),
            f"+49 30 {rng.randrange(10**7, 10**8)}",
            f"+81 3-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        ))
        return _one("pii.phone", v, (
            "Call me on {v} after 5pm.", "Phone: {v}", "his mobile is {v}",
            "tel {v} (office)"), rng)

    def payment_card() -> Snippet:
        return _one("pii.payment_card", card(rng), (
            "My card number is {v}, exp 04/28.", "Card: {v}", "charge {v} for the order",
            "PAN {v} was declined"), rng)

    def iban() -> Snippet:
        faker = rng.choice((f_gb, f_de, f_fr, f_nl, f_es))
        v = iban_grouped(faker.iban(), rng)
        return _one("pii.iban", v, (
            "Please wire the refund to IBAN {v}.", "IBAN: {v}", "account {v} (savings)"), rng)

    def ssn() -> Snippet:
        v = f_us.ssn()
        if rng.random() < 0.25:
            v = v.replace("-", "")
            return _one("pii.us_ssn", v, ("SSN: {v}", "social security number {v}"), rng)
        return _one("pii.us_ssn", v, (
            "SSN {v}", "my social security number is {v}", "applicant {v} was approved",
            "ssn: {v}"), rng)

    def ipv4() -> Snippet:
        v = f_us.ipv4_public() if rng.random() < 0.7 else f_us.ipv4_private()
        return _one("pii.ip.v4", v, (
            "The request came from {v}.", "ssh admin@{v} -p 22".replace("admin@", ""),
            "client_ip={v}", "blocked {v} after 5 failed logins", "connect to {v}:8443"), rng)

    def ipv6() -> Snippet:
        v = f_us.ipv6()
        if rng.random() < 0.5:
            v = ipaddress.IPv6Address(rng.choice(("2001:db8", "2a00:1450", "fe80")) + "::"
                                      + f"{rng.randrange(65536):x}:{rng.randrange(65536):x}"
                                      ).compressed
        return _one("pii.ip.v6", v, (
            "Client address {v} hit the limit.", "listen on [{v}]:443", "peer={v}"), rng)

    def dob() -> Snippet:
        d = f_us.date_of_birth(minimum_age=18, maximum_age=90)
        v = d.strftime(rng.choice(("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%B %d, %Y",
                                   "%d %B %Y")))
        return _one("pii.date_of_birth", v, (
            "DOB: {v}", "Date of birth {v}", "born on {v} in Ohio", "birthdate: {v}",
            "patient (dob {v}) reports", "{v} (date of birth)"), rng)

    def passport() -> Snippet:
        v = f_us.passport_number()
        if rng.random() < 0.3:
            v = rng.choice(string.ascii_uppercase) + rand(rng, string.digits, 8)
        return _one("pii.passport", v, (
            "Passport number {v}", "passport no: {v}", "my passport is {v}",
            "Passport: {v}, expires 2031"), rng)

    def licence() -> Snippet:
        v = rng.choice((
            rng.choice(string.ascii_uppercase) + rand(rng, string.digits, 7),
            rand(rng, string.digits, 8),
            f"{rng.choice('SFW')}{rand(rng, string.digits, 3)}-{rand(rng, string.digits, 4)}-"
            f"{rand(rng, string.digits, 4)}",
            f"{rand(rng, string.digits, 3)} {rand(rng, string.digits, 3)} "
            f"{rand(rng, string.digits, 3)}",
            f"FAKE{rand(rng, string.ascii_uppercase, 1)}{rand(rng, string.digits, 6)}"
            f"{rand(rng, string.ascii_uppercase, 2)}9{rand(rng, string.ascii_uppercase, 2)}",
        ))
        return _one("pii.driver_licence", v, (
            "Driver's license: {v}", "DL# {v}", "driving licence number {v}",
            "drivers license no. {v} (CA)"), rng)

    def mrn() -> Snippet:
        v = rng.choice((rand(rng, string.digits, rng.randint(6, 10)),
                        rng.choice(("H", "MR", "MRN")) + rand(rng, string.digits, 7)))
        return _one("phi.medical_record_number", v, (
            "MRN: {v}", "Patient MRN {v} was admitted", "medical record number {v}",
            "chart no. {v}"), rng)

    def icd() -> Snippet:
        v = rng.choice(("E11.9", "I10", "J45.909", "F32.9", "M54.5", "K21.9", "N39.0",
                        "E78.5", "Z79.4", "I25.10", "J44.1", "G43.909", "F41.1", "R51.9",
                        "S72.001A", "C50.911", "E66.01", "L40.0", "O24.410", "T78.40XA"))
        return _one("phi.icd10", v, (
            "Diagnosis: {v}", "ICD-10 {v} (primary)", "patient was diagnosed with {v} in 2019",
            "history of {v}; continue current meds", "dx {v}"), rng)

    def npi_number() -> Snippet:
        return _one("phi.npi", npi(rng), (
            "NPI: {v}", "rendering provider NPI {v}", "Dr. Smith (NPI {v})",
            "national provider identifier {v}"), rng)

    def dea_number() -> Snippet:
        return _one("phi.dea", dea(rng), (
            "DEA# {v}", "prescriber DEA number {v}", "DEA registration {v}"), rng)

    def plan_id() -> Snippet:
        v = rng.choice((
            rand(rng, string.ascii_uppercase, 3) + rand(rng, string.digits, 9),
            "W" + rand(rng, string.digits, 9),
            f"{rng.randint(1, 9)}{rand(rng, 'ACDEFGHJKMNPQRTUVWXY', 2)}{rng.randrange(10)}-"
            f"{rand(rng, 'ACDEFGHJKMNPQRTUVWXY', 1)}{rand(rng, 'ACDEFGHJKMNPQRTUVWXY', 1)}"
            f"{rng.randrange(10)}-{rand(rng, 'ACDEFGHJKMNPQRTUVWXY', 2)}"
            f"{rng.randrange(10)}{rng.randrange(10)}",
        ))
        return _one("phi.health_plan_id", v, (
            "Member ID: {v}", "insurance member id {v}", "Medicare MBI {v}",
            "subscriber id {v}, group 4471"), rng)

    return {
        "secrets.aws.access_key_id": aws_key, "secrets.aws.secret_access_key": aws_secret,
        "secrets.gcp.service_account_key": gcp_sa, "secrets.gcp.api_key": gcp_api,
        "secrets.azure.connection_string": azure_conn, "secrets.azure.storage_key": azure_key,
        "secrets.azure.client_secret": azure_secret, "secrets.github.token": github,
        "secrets.gitlab.token": gitlab, "secrets.slack.token": slack_token,
        "secrets.slack.webhook": slack_hook, "secrets.stripe.key": stripe,
        "secrets.openai.api_key": openai, "secrets.anthropic.api_key": anthropic,
        "secrets.jwt": jwt_token, "secrets.private_key": pem,
        "secrets.database_url": db_url, "secrets.generic": generic,
        "pii.email": email, "pii.phone": phone, "pii.payment_card": payment_card,
        "pii.iban": iban, "pii.us_ssn": ssn, "pii.ip.v4": ipv4, "pii.ip.v6": ipv6,
        "pii.date_of_birth": dob, "pii.passport": passport, "pii.driver_licence": licence,
        "phi.medical_record_number": mrn, "phi.icd10": icd, "phi.npi": npi_number,
        "phi.dea": dea_number, "phi.health_plan_id": plan_id,
    }


def provider_keys(rng: random.Random) -> dict[str, Callable[[], Snippet]]:
    """Keys of the AI providers the rules learned later (their samples come from a random
    stream of their own: see ``build_corpus``)."""

    def key(cls: str, prefix: str, length: int, chars: str, name: str,
            ) -> Callable[[], Snippet]:
        def make() -> Snippet:
            if chars == ALNUM:
                v = prefix + "FAKE" + mixed(rng, length - 4, chars)
            else:  # hex: no room for the marker
                v = prefix + rand(rng, chars, length - 2) + rng.choice("abcdef") + str(
                    rng.randint(0, 9))
            return _one(cls, v, (
                f"{name}_API_KEY={{v}}", f'client = {name.title()}(api_key="{{v}}")',
                "requests with {v} come back 401", 'headers = {{"Authorization": "Bearer {v}"}}'),
                rng)
        return make

    return {
        "secrets.openrouter.api_key": key(
            "secrets.openrouter.api_key", "sk-or-v1-", 64, "0123456789abcdef", "OPENROUTER"),
        "secrets.groq.api_key": key("secrets.groq.api_key", "gsk_", 52, ALNUM, "GROQ"),
        "secrets.xai.api_key": key("secrets.xai.api_key", "xai-", 80, ALNUM, "XAI"),
        "secrets.perplexity.api_key": key(
            "secrets.perplexity.api_key", "pplx-", 48, ALNUM, "PERPLEXITY"),
    }


def provider_key_near_miss(rng: random.Random) -> str:
    return rng.choice((
        "GROQ_API_KEY=gsk_your_groq_api_key_here",
        f"xai-{rand(rng, ALNUM, 30)} is too short for an xAI key",
        f"sk-or-v1-{rand(rng, '0123456789abcdef', 63)} lost a digit",
        f"pplx-{rand(rng, ALNUM, 48)}_suffix is not a key",
    ))


# ---- hard negatives -----------------------------------------------------------------------

CODE = (
    'import os\n\ntoken = os.environ["GITHUB_TOKEN"]\npassword = getpass.getpass()\n'
    "def handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps(event)}\n",
    "const secret = process.env.JWT_SECRET;\napp.get('/api/v1/users/:id', auth, (req, res) =>"
    " {\n  res.json({ id: req.params.id, version: '2.14.0' });\n});\n",
    "func main() {\n\tctx := context.Background()\n\tclient, err := storage.NewClient(ctx)\n"
    '\tif err != nil {\n\t\tlog.Fatalf("client: %v", err)\n\t}\n}\n',
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id\n"
    "WHERE o.created_at >= '2024-01-01' AND o.status = 'paid' LIMIT 100;\n",
    "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 3\n  template:\n    spec:\n"
    "      containers:\n        - name: api\n          image: ghcr.io/fake-org/api:1.4.2\n"
    "          env:\n            - name: API_KEY\n              valueFrom: {secretKeyRef: "
    "{name: api, key: key}}\n",
    "#include <vector>\nstd::vector<int> v{1, 2, 3};\nauto it = std::find(v.begin(), v.end(),"
    " 2);\nstd::cout << *it << std::endl;\n",
    'DATABASE_URL=postgres://user:password@localhost:5432/app\nREDIS_URL=redis://localhost:6379'
    "/0\nSECRET_KEY=${SECRET_KEY}\napi_key: <your-api-key-here>\n",
    "for i in range(1, 10):\n    print(f'{i:03d} -> {hex(i * 0xDEADBEEF)}')\n"
    "assert sha256(b'abc').hexdigest().startswith('ba7816bf')\n",
    "pip install numpy==1.26.4 pandas==2.2.1 torch==2.3.0+cu121\nnode v20.11.1, npm 10.2.4\n",
    "Traceback (most recent call last):\n  File \"app.py\", line 42, in <module>\n"
    "    main()\nKeyError: 'token_count'\n",
)

CUE_ONLY = (
    "Passport renewals currently take six to eight weeks, so plan ahead.",
    "Our provider directory lists every in-network physician by specialty.",
    "Member services can answer questions about your health plan benefits.",
    "The patient portal shows lab results once the physician has reviewed them.",
    "Diagnosis codes must be reviewed by a certified coder before billing.",
    "Date of birth is a required field on the registration form.",
    "A DEA registration is required to prescribe controlled substances.",
    "Your driver's license must be valid for at least six months.",
    "Enter the NPI of the rendering provider in box 24J.",
    "MRN fields accept letters and digits.",
)


def negatives(fake: Faker, rng: random.Random) -> list[Callable[[], str]]:
    f = fake["en_US"]

    def ids() -> str:
        return " ".join(rng.choice((
            f"request_id={f.uuid4()}", f"trace {f.uuid4()}", f"commit {f.sha1()}",
            f"sha256:{f.sha256()}", f"md5 {f.md5()}", f"etag \"{f.md5()}\"",
            f"object {f.sha256()[:40]}", f"build {rng.randrange(10**5)}",
        )) for _ in range(6))

    def blob() -> str:
        raw = rng.randbytes(rng.randint(48, 600))
        text = base64.b64encode(f.paragraph().encode()).decode()
        return rng.choice((
            f"data:image/png;base64,{base64.b64encode(raw).decode()}",
            f"payload: {base64.urlsafe_b64encode(raw).decode()}",
            f"here is the encoded note {text}",
            f"hex dump {raw.hex()}",
        ))

    def versions() -> str:
        return rng.choice((
            f"Upgraded from v{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)} to "
            f"version {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}."
            f"{rng.randint(0, 9)}",
            f"Windows 10.0.{rng.randint(17000, 22631)}.{rng.randint(1, 3000)} build",
            f"Chrome/{rng.randint(100, 125)}.0.{rng.randint(1000, 6000)}.{rng.randint(0, 200)}",
            f"release {rng.randint(1, 5)}.{rng.randint(0, 20)}.0-rc.{rng.randint(1, 5)}",
            f"OID 1.3.6.1.4.1.{rng.randint(1000, 60000)}.1.2",
        ))

    def invoices() -> str:
        return rng.choice((
            f"Invoice INV-{rng.randint(2019, 2025)}-{rng.randrange(10**6):06d} is due on "
            f"{f.date_this_year().isoformat()}, total ${rng.randint(100, 99999)}."
            f"{rng.randint(10, 99)}",
            f"PO #{rng.randrange(10**7)} shipped in {rng.randint(2, 9)} cartons, tracking "
            f"1Z{rand(rng, string.ascii_uppercase + string.digits, 16)}",
            f"Order {rng.randrange(10**9, 10**10)} for SKU {rand(rng, string.ascii_uppercase, 3)}-"
            f"{rng.randrange(10**5)} (qty {rng.randint(1, 40)})",
            f"ticket #{rng.randrange(10**5)} opened {f.iso8601()}, priority P{rng.randint(1, 4)}",
        ))

    def prose() -> str:
        return " ".join(f.paragraphs(rng.randint(1, 4)))

    def numbers() -> str:
        return rng.choice((
            f"Latency p50 {rng.uniform(1, 99):.2f} ms, p99 {rng.uniform(100, 999):.1f} ms over "
            f"{rng.randrange(10**6)} requests at {f.unix_time():.0f}",
            f"coordinates {f.latitude()}, {f.longitude()}",
            f"The meeting is on {f.date_this_decade().strftime('%m/%d/%Y')} at "
            f"{rng.randint(1, 12)}:{rng.randint(10, 59)}pm",
            f"Revenue grew {rng.randint(2, 40)}% to ${rng.randint(1, 999)}.{rng.randint(1, 9)}M;"
            f" headcount {rng.randint(10, 9000)}",
            f"color #{rand(rng, '0123456789abcdef', 6)}, size {rng.randint(8, 72)}px, "
            f"z-index {rng.randint(1, 9999)}",
        ))

    def near_misses() -> str:
        bad_card = card(rng)
        last = bad_card[-1]
        bad_card = bad_card[:-1] + str((int(last) + rng.randint(1, 9)) % 10)
        good_iban = fake["de_DE"].iban()
        bad_iban = good_iban[:2] + f"{(int(good_iban[2:4]) + 1) % 100:02d}" + good_iban[4:]
        good_npi = npi(rng)
        bad_npi = good_npi[:-1] + str((int(good_npi[-1]) + 1) % 10)
        good_dea = dea(rng)
        bad_dea = good_dea[:-1] + str((int(good_dea[-1]) + 1) % 10)
        return rng.choice((
            f"test card {bad_card} should be rejected by the form",
            f"the IBAN {bad_iban} fails validation",
            f"NPI {bad_npi} is not valid",
            f"DEA {bad_dea} was rejected",
            f"SSN {rng.choice(('000', '666', '912'))}-{rng.randint(10, 99)}-"
            f"{rng.randint(1000, 9999)} is not issued",
            f"call 1{rng.randint(10, 99)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
            " extension",
            f"AKIA{rand(rng, string.ascii_lowercase, 16)} is not a key",
            f"ghp_{rand(rng, ALNUM, 36)} has a bad checksum",
        ))

    def cue_only() -> str:
        return rng.choice(CUE_ONLY)

    def lookalikes() -> str:
        ean = rng.choice(("400", "401", "440", "500", "761")) + rand(rng, string.digits, 9)
        ean += str((10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(ean)) % 10)
                   % 10)
        return rng.choice((
            f"EAN {ean}, {rng.randint(2, 40)} units in stock",
            f"ISBN 978-{rng.randint(0, 1)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-"
            f"{rng.randint(0, 9)}",
            f"Windows license key {rand(rng, 'BCDFGHJKMPQRTVWXY2346789', 5)}-"
            f"{rand(rng, 'BCDFGHJKMPQRTVWXY2346789', 5)}-{rand(rng, 'BCDFGHJKMPQRTVWXY2346789', 5)}"
            f"-{rand(rng, 'BCDFGHJKMPQRTVWXY2346789', 5)}",
            f"software license number {rng.randrange(10**7, 10**8)} expires next year",
            f"Slack member ID U{rand(rng, string.ascii_uppercase + string.digits, 8)} joined",
            f"car insurance policy number {rand(rng, string.ascii_uppercase, 2)}-"
            f"{rng.randrange(10**7, 10**8)}",
            "the acute care unit stocks vitamin B12 and D3 supplements",
            f"tweet id {rng.randrange(10**18, 10**19)} by user {rng.randrange(10**9)}",
            f"Stripe customer cus_{rand(rng, ALNUM, 14)} paid with pk_test_{rand(rng, ALNUM, 24)}",
            f"the F16 and B52 models in the medical museum; exhibit {rng.randint(100, 999)}",
        ))

    def code() -> str:
        return rng.choice(CODE)

    return [ids, blob, versions, invoices, prose, numbers, near_misses, cue_only, code,
            lookalikes]


# ---- bodies -----------------------------------------------------------------------------


def _filler(fake: Faker, rng: random.Random) -> str:
    f = fake["en_US"]
    return rng.choice((f.paragraph(), f.sentence(), rng.choice(CODE), f.paragraph() + "\n"
                       + f.paragraph(), ""))


def _escape_first(raw: str, value: str) -> str:
    """The JSON text with the first character of ``value`` written as a \\u escape."""
    encoded = json.dumps(value)[1:-1]
    if not value or encoded not in raw:
        return raw
    return raw.replace(encoded, f"\\u{ord(value[0]):04x}" + encoded[1:], 1)


def wrap(text: str, fake: Faker, rng: random.Random, labels: list[Label],
         name: str) -> Sample:
    """``text`` in a request body of a random shape, with filler around it."""
    f = fake["en_US"]
    before, after = _filler(fake, rng), _filler(fake, rng)
    content = "\n\n".join(p for p in (before, text, after) if p)
    shape = rng.choice(("openai", "openai", "anthropic", "anthropic", "tool", "text"))
    if shape == "text":
        return Sample(name, content.encode(), "text/plain", tuple(labels))
    if shape == "openai":
        doc: object = {"model": rng.choice(("gpt-4o", "gpt-4o-mini", "o3-mini")),
                       "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                    {"role": "user", "content": content}],
                       "temperature": round(rng.random(), 2), "max_tokens": 1024}
    elif shape == "anthropic":
        doc = {"model": "claude-sonnet-4-5", "max_tokens": 2048,
               "system": "Answer concisely.",
               "messages": [{"role": "user", "content": [{"type": "text", "text": content}]}]}
    else:
        args = json.dumps({"note": content, "author": f.user_name()})
        doc = {"model": "gpt-4o", "messages": [
            {"role": "user", "content": f.sentence()},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{rand(rng, ALNUM, 24)}", "type": "function",
                 "function": {"name": "save_note", "arguments": args}}]}]}
    raw = json.dumps(doc, ensure_ascii=rng.random() < 0.3)
    if labels and rng.random() < 0.15:
        raw = _escape_first(raw, labels[0].value)
    return Sample(name, raw.encode(), "application/json", tuple(labels))


def _encode(text: str, labels: list[Label], rng: random.Random) -> str:
    """Some snippets travel encoded: base64 of the whole sentence, or a URL-encoded value."""
    roll = rng.random()
    if roll < 0.08:
        return "decode this and check it: " + base64.b64encode(text.encode()).decode()
    if roll < 0.12 and len(labels) == 1 and labels[0].dlp_class in ("pii.email", "pii.phone"):
        value = labels[0].value
        return f"https://fake.example/unsubscribe?user={quote(value, safe='')}&src=mail"
    return text


def build_corpus(seed: int = SEED, per_class: int = 40, negatives_count: int = 400,
                 ) -> list[Sample]:
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES"])
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out: list[Sample] = []
    makers = positives(fake, rng)
    for cls, make in makers.items():
        for i in range(per_class):
            text, labels = make()
            if cls not in ("secrets.private_key", "secrets.gcp.service_account_key"):
                text = _encode(text, labels, rng)
            if rng.random() < 0.25:  # a second class in the same body
                other, other_labels = makers[rng.choice(list(makers))]()
                text = f"{text}\n\n{other}"
                labels = labels + other_labels
            out.append(wrap(text, fake, rng, labels, f"{cls}#{i}"))
    hard = negatives(fake, rng)
    for i in range(negatives_count):
        parts = [rng.choice(hard)() for _ in range(rng.randint(1, 3))]
        out.append(wrap("\n\n".join(parts), fake, rng, [], f"negative#{i}"))
    # Classes added to the rules later draw from a stream of their own, after the rest: the
    # samples above, and the benchmark's text cut from them, stay as they were.
    later = random.Random(seed + 1)
    for cls, make in provider_keys(later).items():
        for i in range(per_class):
            text, labels = make()
            out.append(wrap(_encode(text, labels, later), fake, later, labels, f"{cls}#{i}"))
    for i in range(max(1, negatives_count // 10)):
        text = "\n\n".join(provider_key_near_miss(later) for _ in range(later.randint(1, 3)))
        out.append(wrap(text, fake, later, [], f"negative#{negatives_count + i}"))
    return out


def _same(found: str, label: str) -> bool:
    """The match is the labelled value (give or take a delimiter, or one JSON escaping)."""
    for want in (label, json.dumps(label)[1:-1]):
        if found == want or (want in found and len(found) <= len(want) + 8):
            return True
        if found in want and len(found) * 5 >= len(want) * 4:
            return True
    return False


@dataclass
class Report:
    scores: dict[str, Score] = field(default_factory=dict)
    false_positives: list[tuple[str, str, str]] = field(default_factory=list)
    missed: list[tuple[str, str, str]] = field(default_factory=list)


def score(scanner: Scanner, corpus: Iterable[Sample]) -> Report:
    report = Report()
    for cls in scanner.classes:
        report.scores[cls] = Score()
    for sample in corpus:
        findings = scanner.scan(sample.body, content_type=sample.content_type)
        found = [(m.dlp_class, findings.value(m)) for m in findings.matches]
        for label in sample.labels:
            s = report.scores.setdefault(label.dlp_class, Score())
            s.labels += 1
            if not any(c == label.dlp_class and _same(v, label.value) for c, v in found):
                s.fn += 1
                report.missed.append((sample.name, label.dlp_class, label.value))
        for cls, value in found:
            s = report.scores.setdefault(cls, Score())
            if any(lab.dlp_class == cls and _same(value, lab.value) for lab in sample.labels):
                s.tp += 1
            else:
                s.fp += 1
                report.false_positives.append((sample.name, cls, value))
    return report
