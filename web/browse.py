"""placeholder"""
from flask import Blueprint
bp = Blueprint("browse", __name__)
@bp.route("/")
def home(): return "x"
for n in ("new","stats"):
    bp.add_url_rule("/"+n, n, lambda: "x")
