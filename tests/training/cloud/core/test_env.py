from training.cloud.core import env


def test_every_key_is_prefixed_and_named_after_its_constant():
    keys = env.all_keys()
    assert len(keys) >= 20
    for name, key in keys.items():
        assert key == env.PREFIX + name


def test_keys_are_unique():
    keys = list(env.all_keys().values())
    assert len(keys) == len(set(keys))


def test_prefix_itself_is_not_a_key():
    assert "PREFIX" not in env.all_keys()
