"""Own words / quoted text / signature / list footer, and subject normalising."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from archiver.clean import clean_message, display_subject, normalise_subject, split_body, strip_footer, is_forward
from archiver.models import RawMessage
from archiver.parse import parse_message

MESSAGES = Path(__file__).resolve().parent.parent / "fixtures" / "messages"
FOOTER = ("_______________________________________________\nbestbits mailing list\n"
          "bestbits@lists.bestbits.example\nhttps://lists.bestbits.example/mailman/listinfo/bestbits")


# --- footers ----------------------------------------------------------------------------------
def test_mailman_footer_is_split_off():
    own, quoted, signature, footer = split_body("Hello all.\n\n" + FOOTER + "\n")
    assert (own, quoted, signature) == ("Hello all.", "", "")
    assert footer == FOOTER
    assert "bestbits mailing list" in footer


def test_footer_after_a_quote_and_signature():
    body = ("Yes.\n\n-- \nJane\n\nOn Tue, Oct 2, 2012 at 10:00 AM, Bob Stone <bob@ngo.example> wrote:\n"
            "> Friday?\n" + FOOTER + "\n")
    own, quoted, signature, footer = split_body(body)
    assert own == "Yes."
    assert signature == "--\nJane"
    assert quoted.endswith("> Friday?")
    assert footer == FOOTER


def test_a_rule_without_list_information_is_not_a_footer():
    body = "Minutes:\n________________________________\nItem one was agreed.\n"
    assert strip_footer(body) == (body, "")


def test_footer_from_a_fixture_through_clean_message():
    data = (MESSAGES / "mailman-footer.eml").read_bytes()
    message = clean_message(parse_message(RawMessage(data=data, kind="eml", location="t")))
    assert message.own_text == "Hello all, the call is at 14:00 UTC."
    assert message.footer.splitlines()[1] == "bestbits mailing list"
    assert message.subject_norm == "Hello"


# --- own / quoted / signature -----------------------------------------------------------------
CASES = {
    "gmail-top-posting": (
        "Sounds good to me.\n\nOn Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n"
        "> Shall we meet Friday?\n>\n> Jane\n",
        "Sounds good to me.",
        "On Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n"
        "> Shall we meet Friday?\n>\n> Jane",
        ""),
    "gmail-wrapped-before-wrote": (
        "Agreed.\n\nOn Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@a-rather-long-domain.example>\n"
        "wrote:\n> Shall we meet Friday?\n",
        "Agreed.",
        "On Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@a-rather-long-domain.example>\nwrote:\n"
        "> Shall we meet Friday?",
        ""),
    "gmail-wrapped-before-address": (
        "Agreed.\n\nOn Tue, Oct 2, 2012 at 10:00 AM, Jane Doe\n<jane.doe@a-rather-long-domain.example> wrote:\n"
        "> Shall we meet Friday?\n",
        "Agreed.",
        "On Tue, Oct 2, 2012 at 10:00 AM, Jane Doe\n<jane.doe@a-rather-long-domain.example> wrote:\n"
        "> Shall we meet Friday?",
        ""),
    "outlook-original-message": (
        "I can do Friday.\n\nRegards,\nBob\n\n-----Original Message-----\n"
        "From: Jane Doe [mailto:jane.doe@civil.example]\nSent: Tuesday, October 02, 2012 10:00 AM\n"
        "To: bestbits@lists.bestbits.example\nSubject: Meeting\n\nShall we meet Friday?\n",
        "I can do Friday.",
        "-----Original Message-----\nFrom: Jane Doe [mailto:jane.doe@civil.example]\n"
        "Sent: Tuesday, October 02, 2012 10:00 AM\nTo: bestbits@lists.bestbits.example\n"
        "Subject: Meeting\n\nShall we meet Friday?",
        "Regards,\nBob"),
    "outlook-header-block": (
        "I can do Friday.\n\nFrom: Jane Doe [mailto:jane.doe@civil.example]\n"
        "Sent: Tuesday, October 02, 2012 10:00 AM\nTo: bestbits@lists.bestbits.example\n"
        "Subject: Meeting\n\nShall we meet Friday?\n",
        "I can do Friday.",
        "From: Jane Doe [mailto:jane.doe@civil.example]\nSent: Tuesday, October 02, 2012 10:00 AM\n"
        "To: bestbits@lists.bestbits.example\nSubject: Meeting\n\nShall we meet Friday?",
        ""),
    "outlook-french": (
        "D'accord.\n\nDe : Jane Doe [mailto:jane.doe@civil.example]\nEnvoyé : mardi 2 octobre 2012 10:00\n"
        "À : bestbits@lists.bestbits.example\nObjet : Réunion\n\nOn se voit vendredi ?\n",
        "D'accord.",
        "De : Jane Doe [mailto:jane.doe@civil.example]\nEnvoyé : mardi 2 octobre 2012 10:00\n"
        "À : bestbits@lists.bestbits.example\nObjet : Réunion\n\nOn se voit vendredi ?",
        ""),
    "forwarded": (
        "FYI.\n\n---------- Forwarded message ----------\nFrom: Jane Doe <jane.doe@civil.example>\n"
        "Date: Tue, Oct 2, 2012\nSubject: Draft\n\nOriginal words.\n",
        "FYI.",
        "---------- Forwarded message ----------\nFrom: Jane Doe <jane.doe@civil.example>\n"
        "Date: Tue, Oct 2, 2012\nSubject: Draft\n\nOriginal words.",
        ""),
    "thunderbird": (
        "Yes, Friday works.\n\nOn 02/10/2012 10:00, Jane Doe wrote:\n> Shall we meet Friday?\n",
        "Yes, Friday works.",
        "On 02/10/2012 10:00, Jane Doe wrote:\n> Shall we meet Friday?",
        ""),
    "apple-mail": (
        "Yes.\n\nOn Oct 2, 2012, at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n\n"
        "> Shall we meet Friday?\n",
        "Yes.",
        "On Oct 2, 2012, at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n\n> Shall we meet Friday?",
        ""),
    "french": (
        "D'accord pour vendredi.\n\nLe 2 oct. 2012 à 10:00, Jane Doe <jane.doe@civil.example> a écrit :\n"
        "> On se voit vendredi ?\n",
        "D'accord pour vendredi.",
        "Le 2 oct. 2012 à 10:00, Jane Doe <jane.doe@civil.example> a écrit :\n> On se voit vendredi ?",
        ""),
    "spanish": (
        "De acuerdo.\n\nEl 2 de octubre de 2012, 10:00, José García <jose.garcia@redes.example> escribió:\n"
        "> ¿Nos vemos el viernes?\n",
        "De acuerdo.",
        "El 2 de octubre de 2012, 10:00, José García <jose.garcia@redes.example> escribió:\n"
        "> ¿Nos vemos el viernes?",
        ""),
    "portuguese": (
        "Combinado.\n\nEm 2 de outubro de 2012 10:00, Ana Souza <ana.souza@rede.example> escreveu:\n"
        "> Vamos nos encontrar sexta?\n",
        "Combinado.",
        "Em 2 de outubro de 2012 10:00, Ana Souza <ana.souza@rede.example> escreveu:\n"
        "> Vamos nos encontrar sexta?",
        ""),
    "german": (
        "Ja.\n\nAm 02.10.2012 um 10:00 schrieb Jane Doe <jane.doe@civil.example>:\n> Freitag?\n",
        "Ja.",
        "Am 02.10.2012 um 10:00 schrieb Jane Doe <jane.doe@civil.example>:\n> Freitag?",
        ""),
    "custom-bracketed-date": (
        "Noted, thanks.\n\nJane wrote [2012-11-04 12:20]:\n> The draft is ready.\n",
        "Noted, thanks.",
        "Jane wrote [2012-11-04 12:20]:\n> The draft is ready.",
        ""),
    "bottom-posting": (
        "On Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n"
        "> Shall we meet Friday?\n\nFriday is fine.\n",
        "Friday is fine.",
        "On Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n> Shall we meet Friday?",
        ""),
    "inline-replies": (
        "Jane Doe wrote:\n> Point one.\n\nAgree with one.\n\n> Point two.\n\nDisagree with two,\n"
        "for two reasons.\n\n> Point three.\n",
        "Agree with one.\n\nDisagree with two,\nfor two reasons.",
        "Jane Doe wrote:\n> Point one.\n\n> Point two.\n\n> Point three.",
        ""),
    "nested-quotes": (
        "Yes.\n\n> > deep\n> middle\n",
        "Yes.",
        "> > deep\n> middle",
        ""),
    "dash-dash-space-signature": (
        "My words.\n\n-- \nJane Doe\nCivil Example Network\n",
        "My words.",
        "",
        "--\nJane Doe\nCivil Example Network"),
    "top-post-signature-above-quote": (
        "Fine by me.\n\n-- \nBob\n\nOn Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n"
        "> Friday?\n>\n> --\n> Jane\n",
        "Fine by me.",
        "On Tue, Oct 2, 2012 at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n> Friday?\n>\n> --\n> Jane",
        "--\nBob"),
    "informal-sign-off": (
        "Here is the draft for review.\n\nBest,\nJane\n\nJane Doe | Civil Example Network\n+1 555 0100\n",
        "Here is the draft for review.",
        "",
        "Best,\nJane\n\nJane Doe | Civil Example Network\n+1 555 0100"),
    "spanish-sign-off": (
        "Adjunto la lista de oradores.\n\nSaludos,\nJosé\n",
        "Adjunto la lista de oradores.",
        "",
        "Saludos,\nJosé"),
    "sent-from-my-iphone": (
        "Yes.\n\nSent from my iPhone\n",
        "Yes.",
        "",
        "Sent from my iPhone"),
    "sent-from-my-iphone-above-quote": (
        "Yes.\n\nSent from my iPhone\n\nOn Oct 2, 2012, at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n\n"
        "> Shall we meet Friday?\n",
        "Yes.",
        "On Oct 2, 2012, at 10:00 AM, Jane Doe <jane.doe@civil.example> wrote:\n\n> Shall we meet Friday?",
        "Sent from my iPhone"),
    "command-line-flag-stays-own": (
        "Run the import with\n--skip-duplicates\nand it works.\n",
        "Run the import with\n--skip-duplicates\nand it works.",
        "",
        ""),
    "double-dash-list-stays-own": (
        "Options:\n-- a\n-- b\nDone.\n",
        "Options:\n-- a\n-- b\nDone.",
        "",
        ""),
    "thanks-alone-is-the-message": (
        "Thanks!\n",
        "Thanks!",
        "",
        ""),
    "crlf-line-endings": (
        "Line one.\r\n\r\nOn Tue, Jane wrote:\r\n> q\r\n",
        "Line one.",
        "On Tue, Jane wrote:\n> q",
        ""),
    "quote-only": (
        "> just quoting\n",
        "",
        "> just quoting",
        ""),
}


@pytest.mark.parametrize("body, own, quoted, signature", list(CASES.values()), ids=list(CASES))
def test_split_body(body, own, quoted, signature):
    got_own, got_quoted, got_signature, footer = split_body(body)
    assert (got_own, got_quoted, got_signature) == (own, quoted, signature)
    assert footer == ""


def test_sentence_after_an_early_thanks_stays_own():
    own, _, signature, _ = split_body("Hi Jane,\n\nThanks!\nI will review the draft tomorrow and send "
                                      "comments by Friday.\n")
    assert "I will review the draft tomorrow" in own
    assert signature == ""


def test_wrote_colon_without_a_following_quote_stays_own():
    own, quoted, _, _ = split_body("Here is what I wrote:\n\nWe should meet on Friday.\n")
    assert own == "Here is what I wrote:\n\nWe should meet on Friday."
    assert quoted == ""


def test_long_quote_is_split_in_linear_time():
    body = "Top.\n\nOn Tue, Jane wrote:\n" + "".join(f"> line {i} of a long quote\n" for i in range(20000))
    own, quoted, _, _ = split_body(body)
    assert own == "Top."
    assert quoted.count("\n") == 20000


def test_clean_message_fills_parts_and_subject():
    data = (b"From: Bob Stone <bob@ngo.example>\nMessage-ID: <c.1@ngo.example>\n"
            b"Subject: Re: [bestbits] RE: Fwd: Draft statement\n\n"
            b"Looks good.\n\n-- \nBob\n\nOn Tue, Jane wrote:\n> Draft attached.\n")
    parsed = parse_message(RawMessage(data=data, kind="eml", location="t"))
    message = clean_message(parsed)
    assert message.own_text == "Looks good."
    assert message.signature == "--\nBob"
    assert message.quoted_text == "On Tue, Jane wrote:\n> Draft attached."
    assert message.footer == ""
    assert message.subject_norm == "Draft statement"
    assert message.subject == parsed.subject       # the original subject is kept
    assert replace(message, own_text="", quoted_text="", signature="", subject_norm="") == parsed


# --- subjects ---------------------------------------------------------------------------------
@pytest.mark.parametrize("subject, base, is_reply", [
    ("Re: Hello", "Hello", True),
    ("RE: Hello", "Hello", True),
    ("re:Hello", "Hello", True),
    ("Re : Hello", "Hello", True),
    ("Fwd: Hello", "Hello", True),
    ("Fw: Hello", "Hello", True),
    ("TR: Hello", "Hello", True),
    ("RES: Hello", "Hello", True),
    ("AW: Hello", "Hello", True),
    ("SV: Hello", "Hello", True),
    ("Re[2]: Hello", "Hello", True),
    ("Re^2: Hello", "Hello", True),
    ("[bestbits] Hello", "Hello", False),
    ("[bestbits] Re: Hello", "Hello", True),
    ("Re: [bestbits] RE: Fwd: Hello", "Hello", True),
    ("[Bestbits-Discuss] [governance] Re: Hello", "Hello", True),
    ("Re: Re: Re:  Hello   world", "Hello world", True),
    ("Hello", "Hello", False),
    ("Resolution: adopted", "Resolution: adopted", False),
    ("Reminder: meeting", "Reminder: meeting", False),
    ("Regarding: the draft", "Regarding: the draft", False),
    ("Awareness: campaign", "Awareness: campaign", False),
    ("Re: ", "", True),
    ("", "", False),
])
def test_normalise_subject(subject, base, is_reply):
    assert normalise_subject(subject) == (base, is_reply)


def test_normalise_subject_stops_on_a_long_stack():
    subject = "Re: " * 100 + "Hello"
    base, is_reply = normalise_subject(subject)
    assert is_reply is True
    assert base.endswith("Hello") and len(base) < len(subject)


@pytest.mark.parametrize("subject, shown", [
    ("Re: [bestbits] RE: Hello", "Re: Hello"),
    ("[bestbits] Hello", "Hello"),
    ("", "(no subject)"),
    ("[bestbits]", "(no subject)"),
])
def test_display_subject(subject, shown):
    assert display_subject(subject) == shown


@pytest.mark.parametrize("subject, forward", [
    ("Fwd: Agenda", True), ("[bestbits] TR: Agenda", True), ("WG: Agenda", True),
    ("Re: Fwd: Agenda", False), ("Re: Agenda", False), ("Agenda", False), ("RV: Agenda", True),
])
def test_is_forward(subject, forward):
    assert is_forward(subject) is forward
