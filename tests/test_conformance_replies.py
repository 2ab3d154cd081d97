"""Conformance: quote and signature splitting (clean.split_body) on other projects' reply fixtures.

The fixtures come from github/email_reply_parser (Ruby), zapier/email-reply-parser (Python),
willdurand/EmailReplyParser (PHP) and alfonsrv/mail-parser-reply, read in place. Expectations
follow what those projects' own suites assert (the visible reply, the quote header, the
signature), held loosely: a distinctive sentence of the writer's own words must be in own
text, and distinctive sentences of the quoted message or the signature must not.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from archiver.clean import split_body

RUBY = "email_reply_parser-github-ruby"
ZAPIER = "email-reply-parser-zapier"
PHP = "EmailReplyParser-willdurand-php"
MPR = "mail-parser-reply"

# The common first paragraph of the PHP suite's multi-language fixtures.
FUSCE = "et mollis ligula rutrum quis. Fusce sed odio id arcu varius aliquet nec nec nibh."


class Reply(NamedTuple):
    path: str                       # folder/file under the realdata folder
    own: tuple[str, ...]            # must all be in own text
    not_own: tuple[str, ...] = ()   # must all be absent from own text
    signature: str | None = None    # must be in the signature part
    whole: bool = False             # nothing quoted, no signature: all of it is own text


def split(realdata: Path, path: str) -> tuple[str, str, str, str]:
    return split_body((realdata / path).read_text(encoding="utf-8"))


def check(realdata: Path, case: Reply) -> None:
    own, quoted, signature, _footer = split(realdata, case.path)
    for words in case.own:
        assert words in own, f"own words missing: {words!r}\n--- own:\n{own}"
    for words in case.not_own:
        assert words not in own, f"not the writer's words: {words!r}\n--- own:\n{own}"
    if case.signature is not None:
        assert case.signature in signature and case.signature not in own
    if case.whole:
        assert (quoted, signature) == ("", ""), (quoted, signature)


REPLIES = {
    # --- github/email_reply_parser (the zapier port shares most of these files) ---
    "ruby-simple-body-with-list-footer": Reply(
        f"{RUBY}/email_1_1.txt",
        ("What is the best way to clear a Riak bucket", "I am currently using the Java HTTP API."),
        ("riak-users mailing list", "http://lists.basho.com/mailman/listinfo")),
    "ruby-top-post": Reply(
        f"{RUBY}/email_1_3.txt", ("Oh thanks.", "Having the function would be great."),
        ("Russell Brown wrote:", "You can list the keys for the bucket", "riak-users mailing list")),
    "ruby-date-string-above-quote": Reply(
        f"{RUBY}/email_1_4.txt", ("Awesome! I haven't had another problem with it.",),
        ("Loader seems to be working well.", "defunkt<reply@reply.github.com>")),
    "ruby-complex-body-one-fragment": Reply(
        f"{RUBY}/email_1_5.txt", ("- This is the fourth bullet point", "It goes on and on\nfor a while."),
        whole=True),
    "ruby-windows-line-endings": Reply(
        f"{RUBY}/email_1_7.txt", (":+1:",), ("Chris Wanstrath", "Steps 0-2 are in prod.")),
    "ruby-inline-replies": Reply(
        f"{RUBY}/email_1_8.txt", ("I will reply under this one", "and under this."),
        ("here's some stuff I can write", "okay?", "After you reply to this I'm going to send"),
        signature="Hey there, this is my signature"),
    "ruby-correct-signature": Reply(
        f"{RUBY}/correct_sig.txt", ("this is an email with a correct -- signature.",), signature="rick"),
    "ruby-outlook-reply": Reply(
        f"{RUBY}/email_2_1.txt", ("Outlook with a reply",),
        ("Google Apps Sync Team [mailto:", "Dear Google Apps Sync user", "The Google Apps Sync Team.")),
    "ruby-outlook-reply-directly-above-line": Reply(
        f"{RUBY}/email_2_2.txt", ("Outlook with a reply directly above line",),
        ("From: CRM Comments", "A new comment has been added to the Contact named")),
    "zapier-outlook-unusual-header-format": Reply(
        f"{ZAPIER}/email_2_3.txt", ("Outlook with a reply above headers using unusual format",),
        ("Kim via Site", "Ei tale aliquam eum, at vel tale sensibus")),
    "ruby-sent-from-iphone": Reply(
        f"{RUBY}/email_iPhone.txt", ("Here is another email",), signature="Sent from my iPhone"),
    "ruby-sent-from-blackberry": Reply(
        f"{RUBY}/email_BlackBerry.txt", ("Here is another email",), signature="Sent from my BlackBerry"),
    "ruby-sent-from-multi-word-device": Reply(
        f"{RUBY}/email_multi_word_sent_from_my_mobile_device.txt", ("Here is another email",),
        signature="Sent from my Verizon Wireless BlackBerry"),
    "ruby-sent-from-in-a-sentence-is-not-a-signature": Reply(
        f"{RUBY}/email_sent_from_my_not_signature.txt",
        ("Here is another email", "Sent from my desk, is much easier then my mobile phone."), whole=True),
    "ruby-dashes-mid-line-are-not-a-signature": Reply(
        f"{RUBY}/email_sig_delimiter_in_middle_of_line.txt",
        ("And here is a fix -- this is not a signature.", "kthxbai"), whole=True),
    "ruby-bullets-kept": Reply(
        f"{RUBY}/email_bullets.txt", ("and retain this formatting", "   - how about bullets\n   - and another"),
        ("Give us an example of how you applied what they learned", "Joe Smith | Director")),
    "ruby-one-is-not-on": Reply(
        f"{RUBY}/email_one_is_not_on.txt",
        ("One outstanding question I had:", "Locally (on development), when I run..."),
        ("On Oct 1, 2012, at 11:55 PM, Dave Tapley wrote:", "much better query for lastLocation")),
    "ruby-greedy-on": Reply(
        f"{RUBY}/greedy_on.txt", ("On your remote host you can run:", "telnet 127.0.0.1 52698"),
        ("On 9 Jan 2014, at 2:47, George Plymale wrote:", "port forwarding stopped")),
    "zapier-partial-quote-header": Reply(
        f"{ZAPIER}/email_partial_quote_header.txt",
        ("This should connect to TextMate (on your Mac, via the tunnel).",), ("I am having an odd issue",)),
    "zapier-headers-without-delimiter": Reply(
        f"{ZAPIER}/email_headers_no_delimiter.txt", ("And another reply!",),
        ("From: Dan Watson", "This is a message.", "Sent from my iPhone")),
    # --- willdurand/EmailReplyParser ---
    "php-outlook-english": Reply(
        f"{PHP}/email_18.txt", (FUSCE,), ("From: John Jung", "Etiam non sagittis orci")),
    "php-gmail-ukrainian": Reply(
        f"{PHP}/email_23.txt", (FUSCE,), ("Ticket answered by ahbladeroot", "Він був добре освіченою")),
    "php-gmail-ukrainian-with-wrote-in-body": Reply(
        f"{PHP}/email_23_1.txt", ("Duis ut libero eu lectus consequat consequat ut vel lorem.",),
        ("Ticket answered by ahbladeroot",)),
    "php-gmail-italian": Reply(
        f"{PHP}/email_7.txt", (FUSCE,),
        ("Dino ha risposto alla tua domanda", "Le informazioni contenute in questo messaggio")),
    "php-gmail-dutch": Reply(f"{PHP}/email_8.txt", (FUSCE,), ("winkel Kortrijk heeft je vraag beantwoord",)),
    "php-gmail-norwegian": Reply(
        f"{PHP}/email_norwegian_gmail.txt", (FUSCE,), ("tracked down the cause of this issue", "Jim Beam")),
    "php-zimbra-english": Reply(
        f"{PHP}/email_zimbra_free_en.txt", ("On this line is the issue", "Michael Scott"), ("Toby Flenderson",)),
    "php-zimbra-french": Reply(
        f"{PHP}/email_zimbra_free_fr.txt", ("Le paragraphe qui pose problème.", "Michael Scott"),
        ("Toby Flenderson",)),
    "php-french-quote-header-after-dash": Reply(
        f"{PHP}/email_issue_77.txt", ("Le paragraphe qui pose problème.",), ("Test a écrit",)),
    "php-signature-without-blank-line": Reply(
        f"{PHP}/sig_no_empty_line.txt", ("this is an email with a signature with no empty line above.",),
        signature="rick"),
    # A line starting with '-' that is not a signature (the library cuts at '-\w' and '--x').
    "php-ls-l-listing-is-not-a-signature": Reply(
        f"{PHP}/email_ls-l.txt",
        ("$ LC_ALL=C ls -l /tmp|grep sess|head", "-rw------- 1 http   http       62 Feb 15 12:45",
         "sess_25tni1suqgasqk8osnmk098sc6"), signature="glen"),
    "php-windows-10-mail": Reply(
        f"{PHP}/email_w10_mail.txt", ("Great thanks Bort, going for a test now.",),
        ("Bort replied:", "Here is the stuff.", "we don't do that")),
    "php-outlook-header-after-blank-lines": Reply(
        f"{PHP}/email_customer_quote_header_2.txt", ("Thank you very much.",),
        ("somedude [mailto:test@webdomain.com]", "You have a new message")),
    # --- alfonsrv/mail-parser-reply ---
    "mpr-japanese": Reply(
        f"{MPR}/email_ja_1_2.txt", ("お世話になっております。織田です。", "それでは 11:00 にお待ちしております。"),
        ("かしこまりました", "明日の 11:00 でお願いいたします")),
    "mpr-swedish-quoted-header": Reply(
        f"{MPR}/email_swedish_1.txt", ("Ursäkta mitt sena svar!",), ("Jag har försökt få tag i det",)),
    "mpr-swedish-gmail": Reply(
        f"{MPR}/email_swedish_2.txt", ("unfortunately I have a contract till end of the year",),
        ("Have you ever used Project X", "We currently have 85 million users")),
    "mpr-swedish-nested": Reply(
        f"{MPR}/email_sv_anon_1.txt", ("Enklast är om vi kan ta ett kort samtal under dagen.",),
        ("Ursäkta mitt sena svar!", "Jag har försökt få tag i det")),
    "mpr-danish-gmail": Reply(
        f"{MPR}/email_danish_1.txt", ("Tak for din mail. Det lyder godt.",), ("Hvordan går det med projektet?",)),
    "mpr-polish": Reply(
        f"{MPR}/email_pl_1_2.txt", ("Jak się masz?",), ("Wszystko w porządku, dziękuję. A ty?",)),
    "mpr-dutch-list-footer": Reply(
        f"{MPR}/email_nl_1_1.txt", ("Wat is de beste manier om een Riak-bucket",), ("riak-gebruikers mailing list",)),
    "mpr-german-wrapped-header": Reply(
        f"{MPR}/email_3_1.txt", ("This is fairly common; nothing too hard here!",),
        ("This is my second test reply. Should be the content.", "Veeam Cloud & Service Providers Support")),
}


@pytest.mark.parametrize("name", list(REPLIES))
def test_reply_fixture_own_words_kept_and_quote_dropped(realdata, name):
    check(realdata, REPLIES[name])


# Cases that needed the cleaner's own rules beyond email-reply-parser: attributions wrapped over
# three lines or preceded by the writer's last line, originals sent without '>' prefixes, and
# Outlook header blocks, "original message" rules and attributions in other languages.
HARDER_REPLIES = {
    "ruby-pathological-line-before-attribution": Reply(
        f"{RUBY}/pathological.txt",
        ("I will try to fix the problem as soon as I\nget back to a computer.",),
        ("I think your code is shortening the reference sequence",)),
    "ruby-bottom-post-greeting-before-attribution": Reply(
        f"{RUBY}/email_1_2.txt", ("Hi,", "You can list the keys for the bucket"),
        ("What is the best way to clear a Riak bucket",)),
    "ruby-three-line-attribution": Reply(
        f"{RUBY}/email_1_6.txt", ("I get proper rendering as well.",),
        ("On Dec 16, 2011, at 12:47 PM, Corey Donohoe", "Was this caching related")),
    "php-three-line-attribution": Reply(
        f"{PHP}/email_thread.txt", ("This is new email reply in thread from bellow.",),
        ("On Nov 21, 2014,", "at 10:18,")),
    "zapier-gmail-unprefixed-quote": Reply(
        f"{ZAPIER}/email_gmail.txt", ("This is a test for inbox replying to a github message.",),
        ("That way people can tell how outdated their version is",
         "You are receiving this because you are subscribed to this thread.")),
    "php-unquoted-reply": Reply(
        f"{PHP}/email_unquoted_reply.txt", ("This is my reply.",), ("This is my quote.",)),
    "mpr-iphone-chain-unprefixed-quotes": Reply(
        f"{MPR}/multi_header.txt", ("No problem. I’ll just start a new order.",),
        ("we are unable to add items to your order", "We apologize for the incorrect product")),
    "php-outlook-french-envoye-le": Reply(
        f"{PHP}/email_10.txt", (FUSCE,), ("De : Company Questions", "Etiam non sagittis orci")),
    "php-outlook-italian-inviato": Reply(
        f"{PHP}/email_13.txt", (FUSCE,), ("Da: Company Questions", "Etiam non sagittis orci")),
    "php-outlook-dutch-verzonden": Reply(
        f"{PHP}/email_12.txt", (FUSCE,), ("Van: Company Questions", "Etiam non sagittis orci")),
    "php-outlook-chinese": Reply(
        f"{PHP}/email_22.txt", (FUSCE,), ("发件人: Company Questions", "Etiam non sagittis orci")),
    "mpr-outlook-danish": Reply(
        f"{MPR}/email_danish_2.txt", ("Jeg har modtaget filerne.",),
        ("Fra: Hanne Hansen", "Her er filerne du bad om.")),
    "mpr-danish-original-message-rule": Reply(
        f"{MPR}/email_danish_4.txt", ("Svar.",), ("-----Oprindelig meddelelse-----", "Fra: Peter Petersen")),
    "php-polish-napisal-unprefixed": Reply(
        f"{PHP}/email_16.txt", (FUSCE,), ("napisał(a):", "Etiam non sagittis orci")),
}


@pytest.mark.parametrize("name", list(HARDER_REPLIES))
def test_reply_fixture_beyond_the_library(realdata, name):
    check(realdata, HARDER_REPLIES[name])


# --- PHP's quote-header template: one reply, many attribution formats -------------------------

ATTRIBUTIONS = {
    "english": "On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:",
    "french-gmail": "Le 19 mars 2014 10:37, Cédric Lombardot <cedric.lombardot@gmail.com> a écrit :",
    "french-thunderbird": "Le 19/03/2014 11:34, Georges du chemin a écrit :",
    "spanish-gmail": "El 19/03/2014 11:34, Juan Pérez <juan.perez@mailcatch.com> escribió:",
    "german-am-schrieb": "Am 25.06.2015 um 10:55 schrieb Test user:",
    "german-address-schrieb": "Test user <test@example.com> schrieb:",
}


def _template(realdata: Path) -> str:
    text = (realdata / PHP / "email_with_date_headers.txt").read_text(encoding="utf-8")
    assert "[DATE]" in text
    return text


@pytest.mark.parametrize("line", list(ATTRIBUTIONS.values()), ids=list(ATTRIBUTIONS))
def test_attribution_line_in_supported_language_is_not_own_text(realdata, line):
    own, quoted, _, _ = split_body(_template(realdata).replace("[DATE]", line))
    assert own.startswith("Thank you very much.")
    assert line.strip() not in own and line.strip() in quoted


def test_attribution_template_previous_mail_is_not_own_text(realdata):
    own, _, _, _ = split_body(_template(realdata).replace("[DATE]", ATTRIBUTIONS["english"]))
    assert own == "Thank you very much."


# --- speed and lines that only look like signatures --------------------------------------------

def test_long_quote_is_split(realdata):
    """The 767 KB quote (a speed case upstream: it must split in well under a second) completes
    and keeps the writer's opening words; no timing is asserted here."""
    path = realdata / RUBY / "email_long_quote.txt"
    assert path.stat().st_size > 700_000
    own, quoted, _, _ = split(realdata, f"{RUBY}/email_long_quote.txt")
    assert own.startswith("Hi folks\n\nWhat is the best way to clear a Riak bucket")
    assert quoted


def test_pathological_fixture_is_split(realdata):
    """The other upstream speed case: a very long quoted DNA line."""
    own, quoted, _, _ = split(realdata, f"{RUBY}/pathological.txt")
    assert own.startswith("I think you're onto something.")
    assert "ATGGAGAGAATAAAGGAATTAAGAGATCTAATG" in quoted


def test_double_dash_option_line_is_not_a_signature():
    """A command-line option such as '--skip-duplicates' at the start of a line is the writer's
    text; only a line that is exactly '--' or '-- ' opens a signature. (No fixture above holds
    such a line; the ls -l listing is the nearest real case.)"""
    body = ("Run the import again with\n--skip-duplicates\nand it will go through.\n\n"
            "-- \nJane Doe\nArchive team")
    own, quoted, signature, _ = split_body(body)
    assert own == "Run the import again with\n--skip-duplicates\nand it will go through."
    assert quoted == "" and signature == "--\nJane Doe\nArchive team"
