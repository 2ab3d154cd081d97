"""Sources: mbox splitting (mboxo/mboxrd/CRLF/gzip), maildir, single messages, stdin, directories,
pipermail mirrors."""

from __future__ import annotations

import gc
import gzip
import io
import os
import shutil
import warnings
from pathlib import Path

import pytest

from archiver.errors import SourceError
from archiver.sources import read_source
from archiver.sources.mbox import is_from_line, read_stdin, sniff, split_mbox
from archiver.sources.pipermail import article_urls, month_files, public_base, read_mirror

MESSAGES = Path(__file__).resolve().parent.parent / "fixtures" / "messages"


def read(path: Path | str) -> tuple[list, list[str]]:
    skipped: list[str] = []
    return list(read_source(str(path), skipped)), skipped


def eml(mid: str, body: str = "Body.\n") -> bytes:
    return (f"From: Jane Doe <jane.doe@civil.example>\nMessage-ID: <{mid}>\n"
            f"Subject: {mid}\n\n{body}").encode()


def mbox(*messages: bytes) -> bytes:
    return b"".join(b"From jane.doe@civil.example Tue Oct  2 10:00:00 2012\n" + m + b"\n" for m in messages)


# --- From_ lines and splitting ----------------------------------------------------------------
@pytest.mark.parametrize("line, expected", [
    (b"From jane.doe@civil.example Tue Oct  2 10:00:00 2012", True),
    (b"From jane.doe@civil.example Tue Oct  2 10:00:00 2012\r\n", True),
    (b"From jane.doe at civil.example  Tue Oct  2 10:00:00 2012", True),       # pipermail
    (b"From - Tue Oct  2 10:00:00 2012", True),                                 # Thunderbird
    (b"From MAILER-DAEMON Tue Oct  2 10:00:00 2012", True),
    (b"From jane.doe@civil.example Tue Oct 2 10:00:00 +0200 2012", True),
    (b"From jane.doe@civil.example Tue Oct 02 10:00 2012", True),
    (b"From jos\xc3\xa9@redes.example Wed Oct  3 18:30:00 2012", True),          # non-ASCII
    (b"From my perspective, this is body text.", False),
    (b"From here on we agree.", False),
    (b"From: Jane Doe <jane.doe@civil.example>", False),
    (b">From jane.doe@civil.example Tue Oct  2 10:00:00 2012", False),
    (b"From " + b"x" * 2000 + b" Tue Oct  2 10:00:00 2012", False),              # length bound
])
def test_is_from_line(line, expected):
    assert is_from_line(line) is expected


@pytest.mark.parametrize("head, kind", [
    (b"From jane.doe@civil.example Tue Oct  2 10:00:00 2012\nFrom: x\n", "mbox"),
    (b"\xef\xbb\xbf\nFrom jane.doe@civil.example Tue Oct  2 10:00:00 2012\n", "mbox"),
    (b"From somebody with an unreadable date\n", "mbox"),
    (b"Return-Path: <jane.doe@civil.example>\nFrom: x\n", "message"),
    (b"Meeting notes, not an e-mail.\n", None),
    (b"\x89PNG\r\n\x1a\n", None),
    (b"", None),
])
def test_sniff(head, kind):
    assert sniff(head) == kind


def test_split_mbox_offsets_envelopes_and_bodies():
    data = mbox(eml("one@civil.example"), eml("two@civil.example"))
    found = list(split_mbox(io.BytesIO(data), "f.mbox"))
    assert [m.data for m in found] == [eml("one@civil.example"), eml("two@civil.example")]
    assert [m.envelope for m in found] == ["From jane.doe@civil.example Tue Oct  2 10:00:00 2012"] * 2
    second = int(found[1].location.split("#")[1])
    assert found[0].location == "f.mbox#0"
    assert data[second:].startswith(b"From jane.doe@civil.example Tue Oct  2")
    assert {m.kind for m in found} == {"mbox"}


def test_crlf_mbox():
    found, skipped = read(MESSAGES / "crlf.mbox")
    assert skipped == []
    assert [m.envelope for m in found] == ["From jane.doe@civil.example Tue Oct  2 10:00:00 2012",
                                           "From bob@ngo.example Tue Oct  2 11:00:00 2012"]
    assert found[0].data.startswith(b"From: Jane Doe <jane.doe@civil.example>\r\n")
    assert found[0].data.endswith(b"First body.\r\n")
    assert found[1].data.endswith(b"Second body.\r\n")
    data = (MESSAGES / "crlf.mbox").read_bytes()
    offset = int(found[1].location.rsplit("#", 1)[1])
    assert data[offset:].startswith(b"From bob@ngo.example")


def test_mboxrd_quoted_from_lines_are_unquoted():
    (message,), _ = read(MESSAGES / "mboxrd-quoted-from.mbox")
    body = message.data.split(b"\n\n", 1)[1]
    assert body == (b"From the minutes:\n>From a quoted message\n>>From deeper\n"
                    b"> From is not a From_ line here\n")


def test_unescaped_from_lines_do_not_split():
    found, _ = read(MESSAGES / "unescaped-from-line.mbox")
    assert len(found) == 2
    assert b"From my perspective, this line is body text.\nFrom here on we agree.\n" in found[0].data
    assert b"Message-ID: <unescaped.2@ngo.example>" in found[1].data


def test_non_ascii_from_line():
    (message,), _ = read(MESSAGES / "non-ascii-from-line.mbox")
    assert message.envelope == "From josé.garcía@redes.example Wed Oct  3 18:30:00 2012"
    assert message.data.startswith(b"From: Jose Garcia")


def test_byte_order_mark_before_the_first_from_line(tmp_path):
    path = tmp_path / "bom.mbox"
    path.write_bytes(b"\xef\xbb\xbf" + mbox(eml("bom@civil.example")))
    (message,), _ = read(path)
    assert message.data == eml("bom@civil.example")
    assert message.location == f"{path}#3"


# --- files by content, not by name ------------------------------------------------------------
def test_gzip_named_txt_is_decompressed(tmp_path):
    path = tmp_path / "2012-October.backup.txt"
    path.write_bytes(gzip.compress(mbox(eml("gz.1@civil.example"), eml("gz.2@civil.example"))))
    found, skipped = read(path)
    assert [m.data for m in found] == [eml("gz.1@civil.example"), eml("gz.2@civil.example")]
    assert skipped == []


def test_plain_file_named_gz_is_read_as_is(tmp_path):
    path = tmp_path / "archive.mbox.gz"
    path.write_bytes(mbox(eml("plain.1@civil.example")))
    (message,), skipped = read(path)
    assert message.data == eml("plain.1@civil.example")
    assert skipped == []


def test_truncated_gzip_is_skipped_with_a_reason(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(mbox(eml("t@civil.example")) * 50)[:60])
    found, skipped = read(path)
    assert found == []
    assert len(skipped) == 1 and skipped[0].startswith(f"{path}: ")
    assert "unreadable" in skipped[0] or "truncated" in skipped[0]


def test_single_eml_file():
    (message,), _ = read(MESSAGES / "rfc2047-name-latin1.eml")
    assert message.kind == "eml"
    assert message.location == str(MESSAGES / "rfc2047-name-latin1.eml")
    assert message.envelope is None
    assert message.data == (MESSAGES / "rfc2047-name-latin1.eml").read_bytes()


def test_txt_without_from_line_is_one_message():
    (message,), skipped = read(MESSAGES / "no-from-line.txt")
    assert message.kind == "eml"
    assert b"Message-ID: <no-from-line.1@civil.example>" in message.data
    assert skipped == []


@pytest.mark.parametrize("truncated", [False, True])
def test_gzip_sources_close_their_files(tmp_path, truncated):
    # gzip.GzipFile(fileobj=...) never closes the file it was given: the source must.
    path = tmp_path / "month.txt.gz"
    data = gzip.compress(mbox(*(eml(f"gz.{i}@civil.example") for i in range(50))))
    path.write_bytes(data[:60] if truncated else data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read(path)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_non_mail_file_is_skipped():
    found, skipped = read(MESSAGES / "not-mail.txt")
    assert found == []
    assert skipped == [f"{MESSAGES / 'not-mail.txt'}: not mail"]


def test_missing_path_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no such file or directory"):
        read(tmp_path / "nope.mbox")


# --- maildir and directories ------------------------------------------------------------------
def _maildir(root: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "cur" / "1349164800.1.host:2,S").write_bytes(eml("md.1@civil.example"))
    (root / "new" / "1349164801.2.host").write_bytes(eml("md.2@civil.example"))
    (root / "tmp" / "1349164802.3.host").write_bytes(eml("md.tmp@civil.example"))
    (root / "cur" / ".hidden").write_bytes(eml("md.hidden@civil.example"))
    return root


def test_maildir(tmp_path):
    found, _ = read(_maildir(tmp_path / "inbox"))
    assert [m.kind for m in found] == ["maildir", "maildir"]
    assert [m.data for m in found] == [eml("md.1@civil.example"), eml("md.2@civil.example")]
    assert found[0].location == str(tmp_path / "inbox" / "cur" / "1349164800.1.host:2,S")


def test_maildir_with_other_mail_beside_it(tmp_path):
    root = _maildir(tmp_path / "notmuch")
    (root / "archive").mkdir()
    (root / "archive" / "old.mbox").write_bytes(mbox(eml("old@civil.example")))
    found, skipped = read(root)
    assert sorted(m.data.split(b"Message-ID: <")[1].split(b">")[0].decode() for m in found) == [
        "md.1@civil.example", "md.2@civil.example", "old@civil.example"]
    assert skipped == []


def test_directory_is_walked_recursively(tmp_path):
    root = tmp_path / "mail"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "deep.mbox").write_bytes(mbox(eml("deep@civil.example")))
    (root / "top.eml").write_bytes(eml("top@civil.example"))
    (root / "zipped.txt").write_bytes(gzip.compress(mbox(eml("zipped@civil.example"))))
    (root / ".hidden.mbox").write_bytes(mbox(eml("hidden@civil.example")))
    (root / "notes.txt").write_bytes(b"Shopping list, not mail.\n")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n0000")
    (root / "empty").write_bytes(b"")
    _maildir(root / "a" / "maildir")
    found, skipped = read(root)
    ids = sorted(m.data.split(b"Message-ID: <")[1].split(b">")[0].decode() for m in found)
    assert ids == ["deep@civil.example", "md.1@civil.example", "md.2@civil.example",
                   "top@civil.example", "zipped@civil.example"]
    assert sorted(skipped) == sorted(f"{root / name}: not mail" for name in ("notes.txt", "photo.png", "empty"))


def test_files_of_a_directory_are_read_in_name_order(tmp_path):
    for month in ("2012-09", "2012-10", "2012-11"):
        (tmp_path / f"{month}.mbox").write_bytes(mbox(eml(f"{month}@civil.example")))
    found, _ = read(tmp_path)
    assert [Path(m.location.split("#")[0]).name for m in found] == [
        "2012-09.mbox", "2012-10.mbox", "2012-11.mbox"]


# --- standard input -----------------------------------------------------------------------------
def test_stdin_mbox_plain_and_gzip():
    data = mbox(eml("in.1@civil.example"), eml("in.2@civil.example"))
    for stream in (io.BytesIO(data), io.BytesIO(gzip.compress(data))):
        found = list(read_stdin(stream))
        assert [m.data for m in found] == [eml("in.1@civil.example"), eml("in.2@civil.example")]
        assert {m.kind for m in found} == {"stdin"}
        assert found[0].location == "-#0"


def test_stdin_single_message():
    (message,) = list(read_stdin(io.BytesIO(eml("in.3@civil.example"))))
    assert (message.kind, message.location, message.data) == ("stdin", "-", eml("in.3@civil.example"))


def test_empty_stdin_is_a_source_error():
    with pytest.raises(SourceError, match="empty"):
        list(read_stdin(io.BytesIO(b"  \n")))


# --- pipermail mirrors ----------------------------------------------------------------------------
BASE_URL = "http://lists.bestbits.example/pipermail/bestbits/"


def _mirror(root: Path) -> Path:
    root.mkdir()
    month = (MESSAGES / "pipermail-month.txt").read_bytes()
    (root / "2012-October.txt").write_bytes(month)
    (root / "2012-October.txt.gz").write_bytes(gzip.compress(month.replace(b"pm.", b"stale.")))
    os.utime(root / "2012-October.txt.gz", (1_349_000_000, 1_349_000_000))
    os.utime(root / "2012-October.txt", (1_349_100_000, 1_349_100_000))
    (root / "index.html").write_text(
        '<p><a href="http://lists.bestbits.example/mailman/listinfo/bestbits">More info</a></p>')
    pages = root / "2012-October"
    pages.mkdir()
    for number, ident in (("000001", "pm.1%40civil.example"), ("000002", "pm.2%40ngo.example")):
        (pages / f"{number}.html").write_text(
            f'<A HREF="mailto:bestbits%40lists.bestbits.example?Subject=Re%3A%20Statement'
            f'&In-Reply-To=%3C{ident}%3E" TITLE="Statement">jane.doe at civil.example</A>')
    return root


def test_month_selection_prefers_the_fresher_text(tmp_path):
    root = _mirror(tmp_path / "bestbits")
    month = (MESSAGES / "pipermail-month.txt").read_bytes()
    # September: the .gz is newer than a stale .txt; November: equal times, the .txt wins.
    (root / "2012-September.txt").write_bytes(month)
    (root / "2012-September.txt.gz").write_bytes(gzip.compress(month))
    os.utime(root / "2012-September.txt", (1_348_000_000, 1_348_000_000))
    os.utime(root / "2012-September.txt.gz", (1_348_500_000, 1_348_500_000))
    (root / "2012-November.txt").write_bytes(month)
    (root / "2012-November.txt.gz").write_bytes(gzip.compress(month))
    for name in ("2012-November.txt", "2012-November.txt.gz"):
        os.utime(root / name, (1_351_000_000, 1_351_000_000))
    (root / "2011-December.txt.gz").write_bytes(gzip.compress(month))
    (root / "2012-Octobre.txt").write_bytes(month)          # not a month file
    assert [p.name for p in month_files(root)] == [
        "2011-December.txt.gz", "2012-September.txt.gz", "2012-October.txt", "2012-November.txt"]


def test_month_selection_takes_a_newer_gz(tmp_path):
    root = _mirror(tmp_path / "bestbits")
    os.utime(root / "2012-October.txt.gz", (1_349_200_000, 1_349_200_000))
    assert [p.name for p in month_files(root)] == ["2012-October.txt.gz"]
    found = list(read_mirror(root, []))
    assert [m.data.count(b"stale.") > 0 for m in found] == [True, True]


def test_mirror_messages_carry_archive_urls(tmp_path):
    root = _mirror(tmp_path / "bestbits")
    assert public_base(root) == BASE_URL
    assert article_urls(root / "2012-October", BASE_URL) == {
        "pm.1@civil.example": BASE_URL + "2012-October/000001.html",
        "pm.2@ngo.example": BASE_URL + "2012-October/000002.html",
    }
    found, skipped = read(root)
    assert skipped == []
    assert [(m.kind, m.archive_url) for m in found] == [
        ("pipermail", BASE_URL + "2012-October/000001.html"),
        ("pipermail", BASE_URL + "2012-October/000002.html"),
    ]
    assert found[0].envelope == "From jane.doe at civil.example  Tue Oct  2 10:00:00 2012"
    assert found[0].location == f"{root / '2012-October.txt'}#0"


def test_mirror_without_index_has_no_urls(tmp_path):
    root = _mirror(tmp_path / "bestbits")
    (root / "index.html").unlink()
    assert [m.archive_url for m in read_mirror(root, [])] == [None, None]


def test_mirror_resolves_scrubbed_attachments(tmp_path):
    root = _mirror(tmp_path / "bestbits")
    stub = (MESSAGES / "pipermail-scrubbed-html.eml").read_bytes()
    (root / "2012-October.txt").write_bytes(
        b"From jane.doe at civil.example  Tue Oct  2 10:00:00 2012\n" + stub + b"\n")
    attachment = root / "attachments" / "20121002" / "4f1c2e9a" / "attachment.html"
    attachment.parent.mkdir(parents=True)
    attachment.write_bytes(b"<p>The statement text.</p>")
    (message,) = list(read_mirror(root, []))
    assert message.scrubbed == {
        "http://lists.bestbits.example/pipermail/bestbits/attachments/20121002/4f1c2e9a/attachment.html":
            b"<p>The statement text.</p>"}


def test_mirror_never_reads_outside_itself(tmp_path):
    root = _mirror(tmp_path / "bestbits")
    secret = tmp_path / "attachments" / "20121002" / "00ff" / "secret.html"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(b"outside")
    (root / "2012-October.txt").write_bytes(
        b"From jane.doe at civil.example  Tue Oct  2 10:00:00 2012\n"
        b"From: jane.doe at civil.example (Jane Doe)\nMessage-ID: <x@civil.example>\n\n"
        b"An HTML attachment was scrubbed...\nURL: <../attachments/20121002/00ff/secret.html>\n\n")
    (message,) = list(read_mirror(root, []))
    assert message.scrubbed == {}


def test_mirror_inside_a_walked_directory(tmp_path):
    (tmp_path / "lists").mkdir()
    _mirror(tmp_path / "lists" / "bestbits")
    shutil.copy(MESSAGES / "no-from-line.txt", tmp_path / "lists" / "loose.txt")
    found, skipped = read(tmp_path / "lists")
    assert sorted(m.kind for m in found) == ["eml", "pipermail", "pipermail"]
    assert skipped == []       # month pages and index.html are not reported as non-mail


@pytest.mark.parametrize("head", [b'{"message_id": "x@y", "subject": "JSON lines"}\n',
                                  b"<!DOCTYPE html>\n<html><body>page</body></html>\n",
                                  b"note: a line of prose with a colon\n"[5:],
                                  b"[section]\nkey: value\n"])
def test_data_files_are_not_taken_for_messages(tmp_path, head):
    path = tmp_path / "data.txt"
    path.write_bytes(head * 3)
    skipped: list[str] = []
    assert list(read_source(str(path), skipped)) == []
    assert skipped == [f"{path}: not mail"]


def test_a_truncated_month_of_a_mirror_is_reported_and_the_rest_read(tmp_path):
    import gzip as gz

    root = tmp_path / "list"
    root.mkdir()
    body = b"".join(b"From jane at civil.example  Tue Oct  2 10:00:00 2012\nFrom: jane at civil.example\n"
                    b"Message-ID: <m%d@civil.example>\nSubject: s\n\nWords.\n\n" % i for i in range(200))
    whole = gz.compress(body)
    (root / "2012-October.txt.gz").write_bytes(whole[: len(whole) // 2])
    (root / "2012-November.txt").write_bytes(body.replace(b"<m", b"<n"))
    skipped: list[str] = []
    found = list(read_source(str(root), skipped))
    assert len([m for m in found if b"<n" in m.data]) == 200
    assert len(skipped) == 1 and "2012-October.txt.gz" in skipped[0]
