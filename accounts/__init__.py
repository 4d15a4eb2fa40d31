"""Sign up, sign in, sign out and password change: Django's auth views and forms, lightly dressed."""
