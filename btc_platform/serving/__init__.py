"""Online serving: the champion model of a target behind an HTTP API (FastAPI on uvicorn).

`btc_platform.serving.app` loads the model version the champion pointer
(`btc_platform.training.champions`) names, follows the pointer when a promotion moves it, and answers
`GET /health`, `POST /predict` (feature rows in) and `GET /predict/latest` (the newest warehouse bar).
Run it with `python -m btc_platform.serving --port 8000` or `uvicorn btc_platform.serving.app:app`.
"""
