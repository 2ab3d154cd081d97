"""Login forms of private archives: Mailman 2's private-archive form and Django's (HyperKitty)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from bs4 import BeautifulSoup

_USER_NAMES = ("username", "login", "email", "user")   # Mailman 2, django-allauth, Django
_LOGIN_HREF = re.compile(r"/log-?in/?$", re.I)   # Django's /accounts/login/


@dataclass(frozen=True)
class LoginForm:
    action: str                  # absolute URL the form posts to
    fields: tuple[tuple[str, str], ...]   # hidden inputs and the submit button, sent as found
    user_field: str | None
    password_field: str


def looks_like_login(body: bytes, content_type: str) -> bool:
    """Return True for an HTML page that may hold a password form (a cheap test before parsing)."""
    return "html" in content_type.lower() and b"password" in body.lower()


def find_form(body: bytes, page_url: str) -> LoginForm | None:
    """Return the page's form that asks for a password, or None."""
    soup = BeautifulSoup(body, "html.parser")
    for form in soup.find_all("form"):
        password = next((i for i in form.find_all("input")
                         if (i.get("type") or "").lower() == "password" and i.get("name")), None)
        if password is None:
            continue
        fields: list[tuple[str, str]] = []
        users: list[str] = []
        submitted = False
        for item in form.find_all("input"):
            name, kind = item.get("name"), (item.get("type") or "text").lower()
            if not name or item is password:
                continue
            if kind == "hidden":
                fields.append((name, item.get("value") or ""))
            elif kind == "submit" and not submitted:
                # Mailman 2 checks that its "submit" button was pressed; one button only.
                fields.append((name, item.get("value") or ""))
                submitted = True
            elif kind in ("text", "email"):
                users.append(name)
        user = next((u for u in users if u.lower() in _USER_NAMES), users[0] if users else None)
        action = urljoin(page_url, form.get("action") or page_url)
        return LoginForm(action, tuple(fields), user, password["name"])
    return None


def find_login_link(body: bytes, page_url: str) -> str | None:
    """Return the link to a login page on a 'this list is private' page (HyperKitty's 403)."""
    soup = BeautifulSoup(body, "html.parser")
    for link in soup.find_all("a", href=True):
        if _LOGIN_HREF.search(urlsplit(link["href"]).path):
            return urljoin(page_url, link["href"])
    return None


def form_data(form: LoginForm, username: str, password: str) -> bytes:
    """Return the urlencoded body that submits the form with the credentials."""
    pairs = list(form.fields)
    if form.user_field:
        pairs.append((form.user_field, username))
    pairs.append((form.password_field, password))
    return urlencode(pairs).encode("utf-8")
