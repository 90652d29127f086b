"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "speech.tera": ("multissl.speech.tasks:TeraTask",
                    "TERA time/frequency/magnitude alteration pre-training on log-mel frames"),
}
EVALS = {
    "speech": ("multissl.speech.evaluate:main",
               "frozen-feature keyword / speaker probe of log-mel, a random encoder or a TERA run"),
}
BENCHES = {
    "speech": ("multissl.speech.bench:main",
               "TERA pre-training utterances/s and feature-extraction real-time factor"),
}
