"""${message}"""

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
    # Raise meta.schema_version with schema.SCHEMA_VERSION when the schema changed.


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
