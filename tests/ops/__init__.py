"""Operations tests: a real gunicorn, its metrics, logs and the deploy/ rules."""
