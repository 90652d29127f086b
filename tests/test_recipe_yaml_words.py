"""Issue 23 item 4: YAML 1.1 reads off / on / yes / no as booleans; a recipe keeps the text the user typed
for string and choice fields (``data.source=off`` is the .off mesh loader), and bool fields still
accept those words."""

import pytest

from multissl.errors import RecipeError
from multissl.recipes import load_recipe, safe_load


def test_yaml_words_stay_text_and_true_false_stay_booleans():
    assert safe_load("a: off\nb: yes\nc: No\nd: true\ne: FALSE\nf: 1e-3\ng: [on, 2]") == {
        "a": "off", "b": "yes", "c": "No", "d": True, "e": False, "f": "1e-3", "g": ["on", 2]}


def test_override_off_selects_the_off_loader_and_bool_fields_take_yes_no(tmp_path):
    r = load_recipe("pointcloud/pointmae-shapes-small", ["data.source=off", "eval.finetune=no", "eval.picture=on"])
    assert r.config.data.source == "off"
    assert r.config.eval.finetune is False and r.config.eval.picture is True
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ntask: pointcloud.pointmae\ndata:\n  source: off\neval:\n  finetune: yes\n")
    r = load_recipe(str(recipe))
    assert r.config.data.source == "off" and r.config.eval.finetune is True
    with pytest.raises(RecipeError, match="must be one of"):
        load_recipe("pointcloud/pointmae-shapes-small", ["data.source=nope"])
