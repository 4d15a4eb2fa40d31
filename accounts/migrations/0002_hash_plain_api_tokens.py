"""API tokens were rest_framework.authtoken's, stored in plain text; they are now knox's, stored as hashes.

Each plain token is hashed into a knox row, so every client keeps its token, and the plain row is deleted.
authtoken is no longer installed: its table is read, if it is there, and left empty (dropping it would leave
its migrations recorded as applied without it).
"""

from django.db import migrations
from knox.crypto import hash_token
from knox.settings import CONSTANTS

PLAIN_TOKENS = "authtoken_token"


def hash_plain_tokens(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if PLAIN_TOKENS not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "key", "created", "user_id" FROM "{PLAIN_TOKENS}"')
        for key, created, user_id in cursor.fetchall():
            digest = hash_token(key)
            AuthToken(digest=digest, token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id).save()
            AuthToken.objects.filter(digest=digest).update(created=created)  # created is auto_now_add
        cursor.execute(f'DELETE FROM "{PLAIN_TOKENS}"')


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(hash_plain_tokens, migrations.RunPython.noop)]
