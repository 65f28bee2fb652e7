"""E-mail: composing messages and delivering them over SMTP."""
