"""Message -> its parts: own words, quoted text, signature and list footer; subjects normalised."""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from dataclasses import replace
from itertools import accumulate

from email_reply_parser import EmailMessage as _ReplyParser

from .models import Message

MAX_QUOTE_DEPTH = 64

# --- subjects -------------------------------------------------------------------------------
# Reply and forward markers in the languages of the dialogue (and the clients that send them):
# Re, RE, Fwd, Fw, TR (French transfert), RES (Portuguese resposta), AW (German Antwort),
# RV (Spanish reenviado), SV/VS (Nordic), Réf; with optional counters like Re[2] or Re^2.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|tr|res|aw|wg|rv|sv|vs|r|ref|réf|enc|antw)\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*:|"
    r"\[[^\]\n]{1,40}\])\s*", re.I)


_FORWARD = re.compile(r"^\s*(?:\[[^\]\n]{1,40}\]\s*)*(?:fwd?|tr|wg|rv|enc)\s*:", re.I)


def is_forward(subject: str) -> bool:
    """Return True when the subject's first marker is a forward (Fwd:, TR:, WG:, RV:, Enc:)."""
    return bool(_FORWARD.match(subject or ""))


@lru_cache(maxsize=4096)   # a thread's messages share their subject
def normalise_subject(subject: str) -> tuple[str, bool]:
    """Return (subject without reply prefixes and list tags, whether it carried a reply or
    forward prefix)."""
    text = " ".join((subject or "").split())
    is_reply = False
    # A loop, not a recursive regex: stacks like "Re: [bestbits] RE: Fwd:" peel one at a time.
    for _ in range(32):
        match = _PREFIX.match(text)
        if not match:
            break
        tag = match.group(0).lstrip().startswith("[")
        if tag and not text[match.end():].strip() and " " in match.group(0).strip():
            # "[Fwd: subject]" is a whole subject in brackets, not a list tag: unwrap it.
            text = match.group(0).strip()[1:-1]
            continue
        is_reply = is_reply or not tag
        text = text[match.end():]
    return text.strip(), is_reply


def display_subject(subject: str) -> str:
    """Return the subject for display: list tags dropped, one leading Re: kept at most."""
    base, is_reply = normalise_subject(subject)
    return f"Re: {base}" if is_reply and base else base or "(no subject)"


# --- bodies ---------------------------------------------------------------------------------
_NEXT_PART = re.compile(r"^-{5,} next part -{5,}\s*$")
_FOOTER_RULE = re.compile(r"^_{20,}\s*$")
_RULE_START = "_" * 20
_FOOTER_HINT = re.compile(r"mailing list|/listinfo/|/mailman/", re.I)
# Blocks that hold someone else's message unquoted: Outlook, forwards, in several languages.
_ORIGINAL = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Message d'origine|Message original|Mensaje original|"
    r"Mensagem original|Ursprüngliche Nachricht|Forwarded message|Message transféré|"
    r"Mensaje reenviado|Mensagem encaminhada|Oprindelig meddelelse|Ursprungligt meddelande|"
    r"Opprinnelig melding|Oorspronkelijk bericht|Messaggio originale|Wiadomość oryginalna)"
    r"\s*-{2,}|Begin forwarded message:|"
    r"Début du message réexpédié\s*:)\s*$", re.I)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:From|De|Von|Da|Van|Fra|Från|Od|Lähettäjä|发件人)\s*[:：]\*?\s*\S", re.I)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(?:Sent|Date|Envoyé|Envoyé le|Enviado|Enviada|Enviado el|Gesendet|Data|Fecha|Inviato|"
    r"Verzonden|Sendt|Skickat|Wysłano|Lähetetty|发送时间|日期|To|À|Para|An|Til|Till|Aan|Do|A)\s*[:：]\*?\s", re.I)
# Attribution lines: "On ... wrote:", "Le ... a écrit :", "El ... escribió:", "Em ... escreveu:",
# "Am ... schrieb", and the bracketed-date form "Jane wrote [2012-11-04 12:20]:".
_ATTRIBUTION = re.compile(
    r"^\s*(?:On\s.{1,200}\swrote\s*:|Le\s.{1,200}\sa\s+écrit\s*:|El\s.{1,200}\sescribió\s*:|"
    r"Em\s.{1,200}\sescreveu\s*:|Am\s.{1,200}\sschrieb.{0,40}:|"
    r".{1,160}\s(?:wrote|writes|a écrit|escribió|escreveu|schrieb|schreef|skrev|ha scritto|"
    r"napisał\(a\)|napisał|napisała|kirjoitti)\s*(?:\[[^\]]{1,40}\])?\s*:|"
    r".{1,80}<[^>]+>\s*(?:wrote|a écrit|escribió|escreveu|schrieb)\s*:)\s*$", re.I)
_VERBS = ("wrote", "writes", "écrit", "escribió", "escreveu", "schrieb", "schreef", "skrev",
          "scritto", "napisa", "kirjoitti")
# How an attribution of its own begins; such a line never continues the line above it.
_ATTRIBUTION_START = re.compile(r"^(?:On|Le|El|Em|Am|Op|Il|Dnia|Den)\s", re.I)
_SENTENCE = re.compile(r"^\s*(?:\S+\s+){3,}\S*[.?!]\s*$")
_SPECIFIC = re.compile(r"\d|@|<| at ")
_VALEDICTION = re.compile(
    r"^\s*(?:best|best regards|kind regards|warm regards|warmly|regards|cheers|thanks|many thanks|"
    r"thank you|all the best|in solidarity|yours|sincerely|cordialement|bien à vous|amitiés|"
    r"bien cordialement|salutations|saludos|un saludo|saludos cordiales|un abrazo|abrazos|"
    r"atentamente|abraços|abraço|um abraço|atenciosamente|abs|saudações|cumprimentos|"
    r"с уважением|с наилучшими пожеланиями|всего доброго|мир вам|"
    r"مع خالص التحيات|مع التحية|مع تحياتي|تحياتي)[,.!،]?\s*$", re.I)


class _Fragments(_ReplyParser):
    """email-reply-parser with its signature rule tightened: the library cuts at any line that
    starts with '--' or '-x' (such as '--skip-duplicates'); only a whole '-- ' line or a
    'Sent from my ...' line starts a signature here."""

    SIG_REGEX = re.compile(r"(?:--|Sent from my [\w-]+(?: [\w-]+){0,2})$")

    def read(self):
        # The library's read() first runs a DOTALL regex over the whole text to join wrapped
        # "On ... wrote:" lines, which is quadratic on long quotes; wrapped attributions are
        # joined by label_attributions() instead, so only the line scan is kept.
        self.found_visible = False
        self.lines = self.text.split("\n")[::-1]
        for line in self.lines:
            self._scan_line(line)
        self._finish_fragment()
        self.fragments.reverse()
        return self

    def _finish_fragment(self):
        # The library marks every earlier fragment hidden each time a header-like fragment
        # ends, which is quadratic on a body of alternating "From: x" lines; "hidden" is never
        # read here, so a fragment is only closed and kept.
        if self.fragment:
            self.fragment.finish()
            self.fragments.append(self.fragment)
        self.fragment = None


def strip_footer(text: str) -> tuple[str, str]:
    """Split off a Mailman list footer: a rule of underscores followed by list information."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, max(-1, len(lines) - 15), -1):
        if lines[i].startswith(_RULE_START) and _FOOTER_RULE.match(lines[i]) and _FOOTER_HINT.search("\n".join(lines[i + 1:i + 8])):
            return "\n".join(lines[:i]).rstrip(), "\n".join(lines[i:]).strip()
    return text, ""


def label_lines(lines: list[str]) -> list[str]:
    """Label each line 'own', 'quoted' or 'signature'."""
    labels = ["own"] * len(lines)
    marked = [i for i, line in enumerate(lines) if ">" in line and line.lstrip().startswith(">")]
    _label_fragments(lines, labels)
    _label_attributions(lines, labels, marked[-1] if marked else -1)
    _label_originals(lines, labels)
    for i in marked:
        labels[i] = "quoted"
    _label_signatures(lines, labels)
    return labels


def _label_fragments(lines: list[str], labels: list[str]) -> None:
    reader = _Fragments("\n".join(lines)).read()
    i = 0
    for fragment in reader.fragments:
        count = fragment._content.count("\n") + 1
        label = "quoted" if fragment.quoted else "signature" if fragment.signature else "own"
        if fragment.headers and not fragment.quoted:
            label = "own"   # header-like lines alone prove nothing; the rules below decide
        labels[i:i + count] = [label] * count
        i += count


def _label_attributions(lines: list[str], labels: list[str], last_quote: int) -> None:
    # Every attribution ends in one of its verbs; only lines with one within two lines below
    # are tried, which keeps the costly patterns off ordinary prose.
    verbs = _verb_lines(lines)
    if not verbs:
        return
    # last_quote, the last '>' line: "is any later line quoted?" in constant time for each.
    for i, line in enumerate(lines):
        if not (i in verbs or i + 1 in verbs or i + 2 in verbs):
            continue
        if labels[i] == "quoted" or not line.strip() or len(line) > 400:
            continue
        span = _attribution_span(lines, i)
        if not span:
            continue
        strong = _strong_attribution(" ".join(lines[i:i + span]))
        following = next((later for later in lines[i + span:] if later.strip()), "")
        if not strong and not following.lstrip().startswith(">"):
            continue  # "Here is what I wrote:" followed by the writer's own words
        labels[i:i + span] = ["quoted"] * span
        if strong and last_quote < i + span:
            # An attribution followed by no '>' lines: the client sent the original unquoted.
            labels[i:] = ["quoted"] * (len(lines) - i)
            return


def _verb_lines(lines: list[str]) -> set[int]:
    """Return the indices of lines holding an attribution verb (found with str.find: a regex
    alternation tried at every position of every line costs more than the rest of cleaning)."""
    joined = "\n".join(lines)
    text = joined.lower()
    hits = []
    for verb in _VERBS:
        at = text.find(verb)
        while at != -1:
            hits.append(at)
            at = text.find(verb, at + 1)
    if len(text) != len(joined):
        # Lower-casing lengthened some character ("İ"): lines are found by their unlowered starts.
        starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
        return {bisect_right(starts, at) - 1 for at in hits}
    # Otherwise a hit's line is the number of line breaks before it, counted once along the text.
    found: set[int] = set()
    line = done = 0
    for at in sorted(hits):
        line += text.count("\n", done, at)
        done = at
        found.add(line)
    return found


def _strong_attribution(text: str) -> bool:
    """Return True for an attribution that says who and when ("On ...", an address, a date);
    a bare "Jane wrote:" counts only when a '>' quote follows it."""
    return bool(_ATTRIBUTION_START.match(text.strip()) or _SPECIFIC.search(text))


def _attribution_span(lines: list[str], i: int) -> int:
    """Return how many lines (1-3) from i form a reply attribution, or 0."""
    if _ATTRIBUTION.match(lines[i]):
        return 1
    joined = lines[i]
    for extra in (1, 2):
        if i + extra >= len(lines) or joined.rstrip().endswith(":"):
            return 0
        piece = lines[i + extra].lstrip("> ").strip()
        # Clients wrap long attributions ("On ..., Jane <jane@x\n> wrote:"), but a line that is
        # an attribution on its own is not the tail of the words above it.
        if not piece or len(piece) > 80 or _ATTRIBUTION_START.match(piece):
            return 0
        joined = f"{joined} {piece}"
        if _ATTRIBUTION.match(joined):
            return extra + 1
    return 0


def _label_originals(lines: list[str], labels: list[str]) -> None:
    # Whether an own, non-blank line came before: kept as the walk goes (labels behind it no
    # longer change), not searched for at every header block, which is quadratic.
    own_before = False
    for i, line in enumerate(lines):
        if labels[i] == "quoted":
            continue
        if not _may_start_block(line):
            pass   # most lines: their first character rules both patterns out
        elif _ORIGINAL.match(line):
            # Everything from here on is the earlier message, sent along unquoted.
            labels[i:] = ["quoted"] * (len(lines) - i)
            return
        elif _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(nxt) for nxt in lines[i + 1:i + 4]):
            if own_before:
                labels[i:] = ["quoted"] * (len(lines) - i)
                return
            # A header block at the very top is pasted headers, not a quote: drop just the block.
            j = i
            while j < len(lines) and lines[j].strip():
                labels[j] = "quoted"
                j += 1
        if labels[i] == "own" and line.strip():
            own_before = True


def _may_start_block(line: str) -> bool:
    """Return False for a line whose first character rules out _ORIGINAL and _OUTLOOK_FROM,
    decided once per character by a pattern of their first letters (case-folded as they are)."""
    first = line.lstrip()[:1]
    known = _BLOCK_STARTS.get(first)
    if known is None:
        known = _BLOCK_STARTS[first] = _BLOCK_START.match(first) is not None
    return known


# What _ORIGINAL (-, Begin, Début) and _OUTLOOK_FROM (*, From, De, Von, Od, Lähettäjä...) begin with.
_BLOCK_START = re.compile(r"[-*bdfvol发]", re.I)
_BLOCK_STARTS: dict[str, bool] = {}


def _label_signatures(lines: list[str], labels: list[str]) -> None:
    # The last own block before the first quoted tail (or the end) may carry a signature.
    end = len(lines)
    while end > 0 and labels[end - 1] == "quoted":
        end -= 1
    own = [i for i in range(end) if labels[i] == "own"]
    for i in reversed(own):
        if lines[i].rstrip() == "--":   # "--" or "-- ", the signature separator
            for j in range(i, end):
                if labels[j] != "quoted":
                    labels[j] = "signature"
            return
    # Informal sign-off: a valediction followed by a few short lines (name, role, phone),
    # and only when some own words come before it ("Thanks!" alone is the message).
    filled = [i for i in own if lines[i].strip()]
    for pos in range(len(filled) - 1, max(0, len(filled) - 8), -1):
        i = filled[pos]
        if _VALEDICTION.match(lines[i]):
            rest = filled[pos + 1:]
            # Names, roles, organisations and phone numbers are short and are not sentences.
            if len(rest) <= 6 and all(len(lines[j].strip()) <= 120 and not _SENTENCE.match(lines[j])
                                      for j in rest):
                for j in range(i, end):
                    if labels[j] == "own":
                        labels[j] = "signature"
            return


def split_body(body: str) -> tuple[str, str, str, str]:
    """Return (own text, quoted text, signature, footer) of a body."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    text, footer = strip_footer(text)
    # Pipermail's part separators are structure, not anyone's words.
    lines = text.split("\n")
    if " next part " in text:
        lines = [line for line in lines if not _NEXT_PART.match(line)]
    labels = label_lines(lines)
    parts = {"own": [], "quoted": [], "signature": []}
    for line, label in zip(lines, labels):
        parts[label].append(line)
    return (_tidy(parts["own"]), _tidy(parts["quoted"]), _tidy(parts["signature"]), footer)


_BLANK_RUN = re.compile(r"\n{3,}")


def _tidy(lines: list[str]) -> str:
    text = "\n".join(map(str.rstrip, lines))
    return _BLANK_RUN.sub("\n\n", text).strip("\n")


def clean_message(message: Message) -> Message:
    """Fill a parsed message's cleaned parts and normalised subject."""
    own, quoted, signature, footer = split_body(message.body)
    subject_norm, _ = normalise_subject(message.subject)
    return replace(message, own_text=own, quoted_text=quoted, signature=signature,
                   footer=footer, subject_norm=subject_norm)
