"""The REST API, version 1: DRF serializers describe the JSON, viewsets call services and selectors."""
