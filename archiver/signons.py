"""Sign-ons: replies that endorse a statement, and who signed, from a message's own words only."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

LANGUAGES = ("en", "fr", "es", "pt")
MAX_NAME = 120          # a longer "name" is a sentence the patterns misread
MAX_TEXT = 20_000       # own words past this are not read: sign-ons are short


@dataclass(frozen=True)
class SignOn:
    """One endorsement: who signs (an organisation or an individual), as the message names them."""

    kind: str               # "organisation" or "individual"
    name: str
    place: str | None       # a city or country written beside the name, if any
    language: str           # the language of the words that sign (en, fr, es, pt)
    phrase: str             # the sentence that signs, whitespace folded

    def as_dict(self) -> dict:
        return asdict(self)


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


# Each trigger: (pattern, who speaks). "we": an organisation signs (named in the sentence, a
# form, or the sender's); "i": a person signs; "org": the named group `org` is the signer;
# "any": either, decided by the other cues. A trigger is a statement of one's own (first
# person, or an organisation as subject); "X has been endorsed by 80 groups" and "should
# individuals be able to sign?" are not.
_NAME = r"(?P<org>[^\W\d_][^.!?;:]{1,118}?)"
_LEAD = r"(?:^|:\s*)"     # the signer opens the sentence, or what follows its colon
_PLACE = r"(?:\s*\((?P<place>[^()]{2,60})\))?"
TRIGGERS: dict[str, tuple[tuple[re.Pattern, str], ...]] = {
    "en": (
        (_rx(r"\bplease (?:add|include|put) (?:my name|me)\b"), "i"),
        (_rx(r"\bplease (?:add|include|list|put) (?:us|our (?:organi[sz]ation|name|group)\b.*?)\b"
             r"(?:as (?:an? )?(?:\w+ )?(?:signator(?:y|ies)|endorsers?|co-?signer)|to the (?:list of )?"
             r"(?:signatories|signatures|endorsers|sign-?on list)|among the (?:signatories|endorsers))"), "we"),
        (_rx(r"\bplease (?:add|include|list|put) " + _NAME + _PLACE + r" (?:as (?:an? )?(?:\w+ )?"
             r"(?:signator(?:y|ies)|endorsers?)|to the (?:list of )?(?:signatories|endorsers)|"
             r"among the (?:signatories|endorsers))"), "org"),
        (_rx(r"\b(?:we|i)(?: would|'d| do| hereby)? (?:like|wish|want|are (?:happy|glad|pleased|proud|"
             r"delighted)|am (?:happy|glad|pleased|proud|delighted)) to (?:sign|endorse|co-?sign|add our "
             r"(?:name|signature))\b(?! (?:up|off|in|out)\b)"), "any"),   # not "sign up", "sign off"
        (_rx(r"\b(?:we|i) (?:hereby )?(?:endorse|sign|co-?sign|sign on to|support and sign) (?:the|this)\b"), "any"),
        (_rx(r"^(?:(?:we are|we're|i am|i'm) )?(?:very )?(?:happy|glad|pleased|proud|delighted) to "
             r"(?:sign|endorse|co-?sign)\b(?! (?:up|off|in|out)\b)"), "any"),
        (_rx(_LEAD + _NAME + _PLACE + r",? (?:hereby )?(?:endorses|signs|co-?signs|signs on to|joins "
             r"the signatories of|would like to (?:sign|endorse)) (?:the|this)\b"), "org"),
        (_rx(r"\bcount (?:us|me) in\b"), "weak"),
        (_rx(r"\bcount " + _NAME + r" in\b"), "org-weak"),
    ),
    "fr": (
        (_rx(r"\bmerci d'(?:ajouter|inclure|inscrire) (?:mon nom|moi)\b"), "i"),
        (_rx(r"\bmerci d'(?:ajouter|inclure|inscrire) (?:notre (?:organisation|association|nom)|nous)\b"
             r".*\bsignataires\b"), "we"),
        (_rx(r"\b(?:nous|je) (?:souhaitons|souhaite|voudrions|voudrais|aimerions|aimerais|tenons à|"
             r"tiens à|sommes heureux de|suis heureux de|suis heureuse de) (?:la |le )?(?:signer|co-?signer|"
             r"nous joindre aux signataires|endosser)\b"), "any"),
        (_rx(r"\b(?:nous|je) (?:signons|signe|endossons|endosse) (?:la|cette) (?:déclaration|lettre)\b"), "any"),
        (_rx(_LEAD + _NAME + _PLACE + r",? (?:signe|endosse|co-?signe) (?:la|cette) (?:déclaration|lettre)\b"), "org"),
        (_rx(_LEAD + _NAME + _PLACE + r",? se joint aux signataires\b"), "org"),
        (_rx(_LEAD + _NAME + _PLACE + r",? (?:soutient|appuie) (?:la|cette) déclaration et "
             r"(?:souhaite|veut|voudrait) la signer\b"), "org"),
        (_rx(r"\bcompter sur (?:nous|moi)\b"), "weak"),
    ),
    "es": (
        (_rx(r"\bpor favor,? (?:agreguen|añadan|incluyan|sumen|anoten) (?:mi nombre|me)\b"), "i"),
        (_rx(r"\b(?:agréguenme|añádanme|inclúyanme)\b"), "i"),
        (_rx(r"\bpor favor,? (?:agreguen|añadan|incluyan|sumen|anoten) (?:a )?(?:nuestra organización|"
             r"nuestro nombre|nos)\b.*\bfirmantes?\b"), "we"),
        (_rx(r"\b(?:agréguennos|añádannos|inclúyannos|súmennos)\b.*\bfirmantes?\b"), "we"),
        (_rx(r"\b(?:nos gustaría|me gustaría|quisiera|quisiéramos|queremos|deseamos|quiero|deseo) "
             r"(?:firmar|adherir|adherirnos|adherirme|sumarnos|sumarme|suscribir)\b"), "any"),
        (_rx(r"\b(?:firmamos|suscribimos|nos adherimos a|nos sumamos a) (?:la|esta) (?:declaración|carta)\b"), "we"),
        (_rx(_LEAD + _NAME + _PLACE + r",? (?:se suma a|se adhiere a|firma|suscribe) (?:la|esta) "
             r"(?:declaración|carta)\b"), "org"),
        (_rx(r"\bcuenten con (?:nosotros|nosotras|migo)\b"), "weak"),
    ),
    "pt": (
        (_rx(r"\bpor favor,? (?:incluam|adicionem|acrescentem|coloquem) (?:o )?(?:meu nome|-me)\b"), "i"),
        (_rx(r"\bpor favor,? (?:incluam|adicionem|acrescentem|coloquem)(?:-nos| (?:a )?nossa organização|"
             r" nosso nome)\b.*\bsignatári[ao]s?\b"), "we"),
        (_rx(r"\b(?:gostaríamos|gostaria|queremos|quero|desejamos|desejo) (?:de )?(?:assinar|aderir|"
             r"subscrever|endossar)\b"), "any"),
        (_rx(r"\b(?:assinamos|subscrevemos|endossamos|aderimos à) (?:a |esta )?declaração\b"), "we"),
        (_rx(_LEAD + _NAME + _PLACE + r",? (?:assina|subscreve|endossa|adere à) (?:a |esta )?"
             r"(?:declaração|carta)\b"), "org"),
        (_rx(_LEAD + _NAME + _PLACE + r",? apoia a declaração e (?:gostaria|quer|deseja) (?:de )?assinar\b"), "org"),
        (_rx(r"\b(?:podem|pode) contar (?:conosco|connosco|comigo)\b"), "weak"),
    ),
}
# Cues that the signer is a person, not an organisation.
INDIVIDUAL = _rx(r"\b(?:in (?:a|my) (?:personal|individual) capacity|as an individual|individual "
                 r"(?:signatory|capacity)|à titre (?:personnel|individuel)|a título (?:personal|"
                 r"individual|pessoal)|firmante individual|signatári[oa] individual|pessoa física|"
                 r"count me in|compter sur moi|cuenten conmigo|contar comigo)\b")
# A sentence that says no signs nothing ("we will not sign", "nous ne signerons pas").
NEGATION = {"en": _rx(r"\b(?:not|never|cannot|unable)\b|n't\b"), "fr": _rx(r"\b(?:ne|n'|pas|jamais)\b"),
            "es": _rx(r"\b(?:no|nunca)\b"), "pt": _rx(r"\b(?:não|nunca)\b")}
# Who opens a sentence that endorses or supports: the signer, when the trigger did not name one.
SUBJECT = _rx(_LEAD + _NAME + _PLACE + r",? (?:endorses|supports|signs|soutient|appuie|signe|respalda|"
              r"apoya|se suma|se adhiere|firma|apoia|assina|endossa|subscreve)\b")
# "Our organisation, X, as ..." in each language: the name between the commas.
APPOSITIVE = _rx(r"\b(?:our organi[sz]ation|notre organisation|nuestra organización|nossa organização)"
                 r",\s*(?P<org>\S.{0,118}?),\s*(?:as|to|à|como|a la|na)\b")
BEHALF = _rx(r"\b(?:on behalf of|au nom de|en nombre de|em nome d[aeo]s?)\s+(?P<who>[^\W\d_][^.!?;]{1,150})")
AFTER_COLON = re.compile(r":\s*(?P<who>[^\W\d_][^:;!?]{1,150}?)\s*(?:[.!]\s*$|$)")
FORM_NAME = _rx(r"^\s*(?:organi[sz]ation|organización|organização|name|nom|nombre|nome)\s*:\s*(?P<v>\S.{0,150}?)\s*$")
FORM_PLACE = _rx(r"^\s*(?:country|pays|país|city|ville|ciudad|cidade)\s*:\s*(?P<v>\S.{0,60}?)\s*$")
# "Hi Galina, X endorses": a greeting is a greeting word, then names or "all", then a comma.
GREETING = re.compile(r"^(?i:hi|hello|dear|thanks|thank you|bonjour|salut|chers?|chères?|merci|hola|"
                      r"estimad[oa]s?|gracias|olá|ola|oi|prezad[oa]s?|obrigad[oa])"
                      r"(?:\s+(?:[A-ZÀ-Ý][\w'-]*|(?i:all|everyone|tous|à tous|todos|a todos|colleagues|"
                      r"colegas|friends|amis|amigos))){0,3},\s*")
STATEMENT = _rx(r"sign-?on|signatures?\b|signator|endors|call for sign|undersigned|signataires|"
                r"appel à signatures|firmantes|firmas|adhesi[oó]n|assinaturas|signatári|"
                r"statement|declaration|déclaration|declaración|declaração|open letter|lettre ouverte|"
                r"carta abierta|carta aberta|petition|pétition|petición|petição")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_WORDS = re.compile(r"\S+")
_PRONOUNS = {"us", "me", "nous", "moi", "nosotros", "nos", "conosco", "comigo", "it", "this"}


def is_statement(subject: str, text: str = "") -> bool:
    """Return True when a thread's subject or opening words call for signatures to a text."""
    return bool(STATEMENT.search(subject or "") or STATEMENT.search((text or "")[:MAX_TEXT]))


def recognise(own_text: str, *, sender: str = "", organisation: str | None = None,
              statement: bool = True) -> SignOn | None:
    """Return who a message's own words sign for, or None when they sign nothing.

    `sender` and `organisation` (the sender's name and organisation) only stand in when the
    words do not name the signer ("please add us"). Weak cues ("count us in") need
    `statement`: a thread that collects signatures. Never pass quoted text."""
    text = _fold_quotes((own_text or "")[:MAX_TEXT])
    # Quoted lines never sign, even where cleaning left one in the own words.
    lines = ["" if line.lstrip().startswith(">") else line.strip() for line in text.split("\n")]
    for number, (sentence, line_end) in enumerate(_sentences(lines)):
        found = _trigger(sentence, statement)
        if found is None:
            continue
        lang, how, match = found
        individual = how == "i" or bool(INDIVIDUAL.search(sentence))
        name, place = _named(sentence, match, how, lines, line_end, organisation)
        if name is None and how in ("org", "org-weak"):
            continue
        if individual:
            kind = "individual"
            if name is None or (organisation and _same(name, organisation)):
                name = sender or None
        else:
            kind = "organisation"
            name = name or organisation or sender or None
            if name == sender and not organisation:
                kind = "individual"
        if not name:
            continue
        return SignOn(kind, name, place, lang, sentence)
    return None


def _fold_quotes(text: str) -> str:
    return (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
            .replace("\r\n", "\n"))


def _sentences(lines: list[str]):
    """Yield (sentence, index of the line it ends on): paragraphs are joined (mail wraps its
    lines), then split after . ! ?; a form's "Label: value" lines stay apart."""
    block: list[tuple[int, str]] = []
    for index, line in enumerate(lines + [""]):
        if line and not FORM_NAME.match(line) and not FORM_PLACE.match(line):
            block.append((index, line))
            continue
        if block:
            joined = " ".join(part for _, part in block)
            for sentence in _SENTENCE.split(joined):
                yield " ".join(sentence.split()), block[-1][0]
            block = []


def _trigger(sentence: str, statement: bool):
    if sentence.rstrip().endswith("?") or len(sentence) > 600:
        return None
    bare = GREETING.sub("", sentence)
    for lang, patterns in TRIGGERS.items():
        for pattern, how in patterns:
            match = pattern.search(bare)
            if match is None:
                continue
            if NEGATION[lang].search(bare[:match.end()]):
                continue
            if how.endswith("weak") and not (statement or STATEMENT.search(bare)):
                continue
            return lang, how.replace("-weak", "") if how != "weak" else "any", (match, bare)
    return None


def _named(sentence: str, found, how: str, lines: list[str], line_end: int,
           organisation: str | None) -> tuple[str | None, str | None]:
    """Return the signer's name and place as the words give them (None when they do not)."""
    match, bare = found
    for line in lines:                  # a form: "Organisation: X" / "Country: Y"
        named = FORM_NAME.match(line)
        if named:
            place = next((m.group("v") for m in map(FORM_PLACE.match, lines) if m), None)
            return _split(named.group("v"), organisation, place)
    subject = match if match.groupdict().get("org") else SUBJECT.search(bare)
    if subject:
        # "A Rede ... apoia": Portuguese and Spanish put an article before a name.
        name = re.sub(r"^(?:a|o|la|el)\s+(?=[A-ZÀ-Ý])", "", subject.group("org").strip())
        if name.lower() not in _PRONOUNS:
            place = subject.groupdict().get("place")
            return _split(name, organisation, None) if not place else (_clean(name), place.strip())
    appositive = APPOSITIVE.search(bare)
    if appositive:
        return _clean(appositive.group("org")), None
    for pattern in (BEHALF, AFTER_COLON):
        named = pattern.search(bare)
        if named:
            return _split(named.group("who"), organisation, None)
    if how in ("i", "any") and line_end + 1 < len(lines):
        following = next((line for line in lines[line_end + 1:line_end + 3] if line), "")
        if following and len(_WORDS.findall(following)) <= 10 and not following.endswith((".", "?", ":")) \
                and following[:1].isupper():
            return _split(following, organisation, None)
    return None, None


def _split(text: str, organisation: str | None, place: str | None) -> tuple[str | None, str | None]:
    """'Name (Place)', 'Name, Place' or 'Name' -> (name, place); the sender's organisation, when
    the text starts with it, marks where the name ends (names hold commas too)."""
    text = text.strip().rstrip(".! ")
    paren = re.match(r"^(?P<name>.+?)\s*\((?P<place>[^()]{2,60})\)$", text)
    if paren:
        return _clean(paren.group("name")), place or paren.group("place").strip()
    if organisation and _fold(text).startswith(_fold(organisation)):
        rest = text[len(organisation):].strip(" ,")
        return organisation, place or (rest or None)
    if "," in text:
        name, _, tail = text.rpartition(",")
        tail = tail.strip()
        if tail and len(_WORDS.findall(tail)) <= 4 and tail[:1].isupper():
            return _clean(name), place or tail
    return _clean(text), place


def _clean(name: str) -> str | None:
    name = " ".join(name.strip(" ,;:-").split())
    name = re.sub(r"^(?:the|a|o|la|el|le)\s+(?=[A-ZÀ-Ý])", "", name)   # "on behalf of the X"
    if not name or len(name) > MAX_NAME or name.lower() in _PRONOUNS or not any(c.isalnum() for c in name):
        return None
    return name


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", " ".join(text.split()).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _same(a: str, b: str) -> bool:
    return _fold(a) == _fold(b)


def signers(messages: list[dict], *, statement: bool | None = None) -> list[dict]:
    """Return a thread's signers, first sign-on first: each with its message and how often it
    signed. `messages` are records (own_text, from_name, organisation, ...) in date order; the
    first one's subject and words decide whether the thread collects signatures."""
    if not messages:
        return []
    if statement is None:
        statement = is_statement(messages[0].get("subject") or "", messages[0].get("own_text") or "")
    found: dict[tuple[str, str], dict] = {}
    for record in messages:
        signed = recognise(record.get("own_text") or "", sender=record.get("from_name") or "",
                           organisation=record.get("organisation"), statement=statement)
        if signed is None:
            continue
        key = (signed.kind, _fold(signed.name))
        if key in found:
            found[key]["repeats"].append(record.get("msg_hash"))
            continue
        found[key] = {**signed.as_dict(), "msg_hash": record.get("msg_hash"),
                      "message_id": record.get("message_id"), "date": record.get("date"),
                      "from_name": record.get("from_name"), "from_key": record.get("from_key"),
                      "repeats": []}
    return list(found.values())


def evaluate(truth: list[dict], predicted: dict[str, SignOn | None]) -> dict:
    """Compare recognised sign-ons with truth records ({message_id, language, sign_on}):
    precision and recall per language of the message, and how often the name and kind agree."""
    rows: dict[str, dict[str, int]] = {}
    for record in truth:
        lang = record.get("language") or "und"
        row = rows.setdefault(lang, {"tp": 0, "fp": 0, "fn": 0, "names": 0, "kinds": 0})
        want, got = record.get("sign_on"), predicted.get(record["message_id"])
        if want and got:
            row["tp"] += 1
            row["names"] += _same(want["name"], got.name)
            row["kinds"] += want["kind"] == got.kind
        elif got:
            row["fp"] += 1
        elif want:
            row["fn"] += 1
    out = {}
    for lang, row in sorted(rows.items()):
        tp, fp, fn = row["tp"], row["fp"], row["fn"]
        if tp + fp + fn == 0:
            continue
        out[lang] = {**row, "support": tp + fn,
                     "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
                     "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
                     "name_accuracy": round(row["names"] / tp, 4) if tp else None}
    return out
