"""Flask front end over archiver.query (arrives with the web issue)."""
