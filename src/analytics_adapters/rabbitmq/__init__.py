"""RabbitMQ stream adapters on rstream."""
