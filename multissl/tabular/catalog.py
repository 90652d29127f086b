"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "tabular.scarf": ("multissl.tabular.tasks:ScarfTask", "SCARF random-feature-corruption contrastive learning on a table"),
}
BENCHES = {}
