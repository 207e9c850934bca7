"""Builds a second, independent labelled corpus (faker_samples.jsonl) with Faker's generators.

The first corpus was written by the detectors' author; this one takes its values from Faker
(which knows nothing of our patterns), in several locales, wrapped in plain sentences. Phone
numbers are kept only in the forms the guardrail is specified for: North American numbers
and international numbers written with a leading `+`. National forms of other countries
are left out rather than mislabelled. Regenerate with
`.venv/bin/python tests/guardrails/corpus/build_faker_corpus.py [SEED OUTPUT]` (needs the dev
extra). Seed 5 (faker_samples.jsonl) was measured and its misses fixed; seed 6
(faker_holdout.jsonl) was generated after those fixes and measured once, untuned.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

from faker import Faker

HERE = Path(__file__).parent
SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 5
OUTPUT = sys.argv[2] if len(sys.argv) > 2 else "faker_samples.jsonl"
PER_TYPE = 60
rng = random.Random(SEED)
Faker.seed(SEED)
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "en_CA", "en_IN")
fakers = {locale: Faker(locale) for locale in LOCALES}
us = fakers["en_US"]

TEMPLATES = [
    "{v}",
    "Customer {name} can be reached at {v}.",
    "{name} | {v} | {city}",
    '{{"name": "{name}", "value": "{v}"}}',
    "Note from {city}: {v} (see ticket)",
    "{sentence} {v}",
]


def wrap(value: str) -> str:
    template = rng.choice(TEMPLATES)
    return template.format(v=value, name=us.name(), city=us.city(), sentence=us.sentence())


def phone() -> str:
    while True:
        locale = rng.choice(list(fakers))
        number = str(fakers[locale].phone_number())
        if locale in ("en_US", "en_CA") or number.startswith("+"):
            return number


def card() -> str:
    kind = rng.choice(["visa16", "visa13", "mastercard", "amex", "discover", "jcb16", "diners"])
    return str(us.credit_card_number(card_type=kind))


POSITIVES: dict[str, Callable[[], str]] = {
    "pii_ssn": lambda: str(us.ssn()),
    "pii_credit_card": card,
    "pii_email": lambda: str(rng.choice(list(fakers.values())).email()),
    "pii_phone": phone,
    "pii_ip_address": lambda: str(rng.choice([us.ipv4(), us.ipv4_public(), us.ipv6()])),
    "secrets": lambda: rng.choice(
        [
            f"postgresql://{us.user_name()}:{us.password(special_chars=False)}@{us.hostname()}/db",
            f'password = "{us.password(length=14, special_chars=False)}"',
            f"mysql://{us.user_name()}:{us.password(length=16, special_chars=False)}"
            f"@{us.ipv4_private()}:3306/app",
        ]
    ),
}

NEGATIVES: list[Callable[[], str]] = [
    lambda: f"ISBN {us.isbn13()}",
    lambda: f"ISBN {us.isbn10()}",
    lambda: f"EAN {us.ean13()}",
    lambda: f"EAN-8 {us.ean8()}",
    lambda: f"id {us.uuid4()}",
    lambda: f"sha1 {us.sha1()}",
    lambda: f"md5 {us.md5()}",
    lambda: f"at {us.iso8601()}",
    lambda: f"epoch {us.unix_time():.0f}",
    lambda: f"order {us.random_number(digits=rng.randint(8, 12), fix_len=True)}",
    lambda: f"part {us.bothify('??-####-###').upper()}",
    lambda: f"batch {us.numerify('###-##-###')}",
    lambda: f"zip {us.zipcode_plus4()}",
    lambda: f"plate {us.license_plate()}",
    lambda: f"IBAN {us.iban()}",
    lambda: us.user_agent(),
    lambda: us.uri(),
    lambda: us.file_path(depth=3),
    lambda: f"mac {us.mac_address()}",
    lambda: f"host {us.hostname()}:{us.port_number()}",
    lambda: us.address().replace("\n", ", "),
    lambda: us.paragraph(),
    lambda: f"lat {us.latitude()}, long {us.longitude()}",
    lambda: f"v{us.numerify('#.#.##')}",
    lambda: f"{us.date()} {us.time()}",
    lambda: f"cvv {us.credit_card_security_code()}",
    lambda: f"price ${us.pydecimal(left_digits=6, right_digits=2, positive=True)}",
    lambda: f"{us.company()} {us.catch_phrase()}",
]


# The `mysql://` secret is written with an IP address for its host: that sample holds both.
SECRET_WITH_ADDRESS = re.compile(r"@\d{1,3}(?:\.\d{1,3}){3}:")


def labels(label: str, text: str) -> list[str]:
    if label == "secrets" and SECRET_WITH_ADDRESS.search(text):
        return [label, "pii_ip_address"]
    return [label]


def main() -> None:
    rows = [
        {"text": text, "labels": labels(label, text)}
        for label, make in POSITIVES.items()
        for text in (wrap(make()) for _ in range(PER_TYPE))
    ]
    rows += [{"text": rng.choice(NEGATIVES)(), "labels": []} for _ in range(360)]
    with (HERE / OUTPUT).open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
