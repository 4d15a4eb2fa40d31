"""Project settings and URL routing; no logic lives here."""
