"""main()'s result is encoded from what its values are, not from what they say about
themselves (issue 13, finding 7).

A subclass of str, int, float, list, tuple or dict can override every method the
encoder might ask (__contains__, __str__, encode, __int__, __float__, __iter__,
items(), ...), and any object can claim another __class__. The encoder reads the
built-in value such an object stores, the way json.dumps does, so such an object
can neither slip a dict key with a NUL character past the check (the service would
then refuse the frame and blame the script for writing to the result channel) nor
make the answer differ from its real contents. What the encoder still calls (the
documented conversions: isoformat(), ndarray.tolist(), DataFrame.to_dict()) is
validated like any other value, and an exception raised there by the script's own
code is the script's RUNTIME_ERROR.
"""

import json

import pytest

from .conftest import assert_error, run_ok


def refused(server, script):
    """Asserts NOT_JSON_SERIALIZABLE; returns the error message."""
    return assert_error(server.execute(script), 422, "NOT_JSON_SERIALIZABLE", ran=True)["error"]


# -- a dict key with a NUL character is refused, however the key presents itself ---------

NUL_KEYS = {
    # The reported bypass: the harness's check was `"\x00" in k`.
    "str-subclass-contains": (
        "class S(str):\n"
        "    def __contains__(self, x):\n"
        "        return False\n"
        "key = S('k\\x00')\n"),
    "str-subclass-lies-everywhere": (
        "class S(str):\n"
        "    def __contains__(self, x): return False\n"
        "    def find(self, *a): return -1\n"
        "    def __str__(self): return self\n"
        "    def encode(self, *a): return b'k'\n"
        "    def __eq__(self, o): return True\n"
        "    __hash__ = str.__hash__\n"
        "key = S('k\\x00')\n"),
    "numpy-str": "import numpy as np\nkey = np.str_('k\\x00')\n",
    "date-subclass-isoformat": (
        "import datetime\n"
        "class D(datetime.date):\n"
        "    def isoformat(self):\n"
        "        return 'k\\x00'\n"
        "key = D(2024, 1, 2)\n"),
}


@pytest.mark.parametrize("setup", NUL_KEYS.values(), ids=list(NUL_KEYS))
def test_nul_key_is_refused_whatever_the_key_says(server, setup):
    script = f"{setup}def main():\n    print('ran')\n    return {{'ok': 1, key: 2}}\n"
    message = refused(server, script)
    assert "NUL" in message, message


def test_object_claiming_to_be_a_str_is_not_a_key(server):
    # isinstance() believes __class__; the encoder goes by the real type.
    script = ("class F:\n"
              "    __class__ = property(lambda self: str)\n"
              "    def __contains__(self, x): return False\n"
              "    def __str__(self): return 'k\\x00'\n"
              "    def __hash__(self): return 1\n"
              "def main():\n    print('ran')\n    return {F(): 1}\n")
    message = refused(server, script)
    assert "dict key of type __script__.F" in message, message


def test_json_encoder_replaced_by_the_script_is_not_used(server):
    # The harness encodes with the C encoder it bound at import; json.JSONEncoder is the
    # script's to change, and a NUL key it produced got past every check.
    script = ("import json\n"
              "json.JSONEncoder.encode = lambda self, o: '{\"k\\\\u0000\":1}'\n"
              "def main():\n    return {'a': 1}\n")
    assert run_ok(server, script)["result"] == {"a": 1}


# -- values and keys are read from the built-in value they store ---------------------------

# name: (module-level setup, main()'s return expression, the raw JSON of the result)
READ_BY_VALUE = {
    "str-subclass-str": ("class S(str):\n    def __str__(self): return 'lie'\n",
                         "S('truth')", '"truth"'),
    "str-enum-member": ("import enum\nclass Color(str, enum.Enum):\n    RED = 'red'\n",
                        "[Color.RED, {Color.RED: 1}]", '["red",{"red":1}]'),
    "str-subclass-surrogate": (
        # __str__ returns the object itself and encode() says it is fine: a lone surrogate
        # is still replaced, not refused.
        "class S(str):\n    def __str__(self): return self\n"
        "    def encode(self, *a): return b''\n",
        "{S('k\\ud800'): S('v\\udfff')}", '{"k\ufffd\ufffd\ufffd":"v\ufffd\ufffd\ufffd"}'),
    "int-subclass": ("class I(int):\n    def __int__(self): return 99\n"
                     "    def __index__(self): return 98\n    def __repr__(self): return '97'\n"
                     "    def __str__(self): return 'k\\x00'\n",
                     "[I(5), {I(6): 1}]", '[5,{"6":1}]'),
    "int-subclass-claims-huge": ("class I(int):\n    def __int__(self): return 10 ** 400\n",
                                 "I(5)", "5"),
    "float-subclass": ("class F(float):\n    def __float__(self): return 42.0\n"
                       "    def __repr__(self): return 'k\\x00'\n",
                       "[F(1.5), {F(2.5): 1}]", '[1.5,{"2.5":1}]'),
    "float-subclass-nan-inf": ("class F(float):\n    def __float__(self): return 1.0\n",
                               "[F('nan'), F('-inf'), {F('inf'): 1, F('nan'): 2}]",
                               '[null,null,{"Infinity":1,"NaN":2}]'),
    "numpy-scalar-subclass": ("import numpy as np\n"
                              "class I(np.int64):\n    def __int__(self): return 99\n"
                              "    def item(self): return 98\n",
                              "[I(5), {I(6): 1}]", '[5,{"6":1}]'),
    "list-subclass": ("class L(list):\n    def __iter__(self): return iter([1, 2, 3])\n"
                      "    def __len__(self): return 7\n",
                      "L([9])", "[9]"),
    "tuple-subclass": ("class T(tuple):\n    def __iter__(self): return iter(['lie'])\n",
                       "T((1, 2))", "[1,2]"),
    "dict-subclass": ("class D(dict):\n    def items(self): return [('k\\x00', {1})]\n"
                      "    def keys(self): return ['x']\n"
                      "    def __iter__(self): return iter(['y'])\n"
                      "    def __getitem__(self, k): return 'lie'\n",
                      "D(a=1)", '{"a":1}'),
    "dict-subclass-items-raises": ("class D(dict):\n"
                                   "    def items(self): raise ValueError('asked')\n",
                                   "D(a=1)", '{"a":1}'),
    "ordered-dict-order": ("import collections\n"
                           "od = collections.OrderedDict(a=1, b=2)\nod.move_to_end('a')\n",
                           "od", '{"b":2,"a":1}'),
    "key-hash-and-eq-raise": (
        # The encoder never hashes or compares the script's keys.
        "armed = False\n"
        "class S(str):\n    def __str__(self): return self\n"
        "    def __hash__(self):\n"
        "        if armed: raise ValueError('hashed by the encoder')\n"
        "        return str.__hash__(self)\n"
        "    def __eq__(self, o):\n"
        "        if armed: raise ValueError('compared by the encoder')\n"
        "        return str.__eq__(self, o)\n"
        "def arm():\n    global armed\n    armed = True\n",
        "(lambda d: (arm(), d)[1])({S('a'): 1})", '{"a":1}'),
    "key-hash-mutates-the-dict": (
        # Hashing the key adds an entry: it happens while main() builds the dict, never
        # while the encoder walks it.
        "d = {}\n"
        "class S(str):\n    def __str__(self): return self\n"
        "    def __hash__(self):\n"
        "        d[len(d)] = 'added'\n"
        "        return str.__hash__(self)\n",
        "(d.__setitem__(S('a'), 1), d)[1]", '{"0":"added","a":1}'),
}


@pytest.mark.parametrize("setup,expr,raw", READ_BY_VALUE.values(), ids=list(READ_BY_VALUE))
def test_values_are_read_from_what_they_are(server, setup, expr, raw):
    body = run_ok(server, f"{setup}def main():\n    return {expr}\n")
    assert json.dumps(body["result"], ensure_ascii=False, separators=(",", ":")) == raw


# name: (module-level setup, main()'s return expression)
NOT_WHAT_THEY_CLAIM = {
    "int-subclass-really-huge": ("class I(int):\n    def __int__(self): return 5\n",
                                 "I(10 ** 400)"),
    "claims-to-be-str": ("class F:\n    __class__ = property(lambda self: str)\n"
                         "    def __str__(self): return 'x'\n", "F()"),
    "claims-to-be-list": ("class F:\n    __class__ = property(lambda self: list)\n"
                          "    def __iter__(self): return iter([1])\n", "F()"),
    "claims-to-be-dict": ("class F:\n    __class__ = property(lambda self: dict)\n"
                          "    def items(self): return [('a', 1)]\n", "F()"),
    "claims-to-be-int": ("class F:\n    __class__ = property(lambda self: int)\n"
                         "    def __int__(self): return 1\n", "F()"),
    "isoformat-not-a-str": ("import datetime\nclass D(datetime.date):\n"
                            "    def isoformat(self): return {1}\n", "D(2024, 1, 2)"),
}


@pytest.mark.parametrize("setup,expr", NOT_WHAT_THEY_CLAIM.values(), ids=list(NOT_WHAT_THEY_CLAIM))
def test_objects_are_not_what_they_claim(server, setup, expr):
    refused(server, f"{setup}def main():\n    print('ran')\n    return {expr}\n")


# -- the script's own code, called by the encoder ------------------------------------------

SCRIPT_RAISES = {
    "isoformat": ("import datetime\nclass D(datetime.date):\n"
                  "    def isoformat(self):\n        raise ValueError('refused by the script')\n",
                  "{'when': D(2024, 1, 2)}"),
    "to_dict": ("import pandas as pd\nclass F(pd.DataFrame):\n"
                "    def to_dict(self, *a, **k):\n"
                "        raise ValueError('refused by the script')\n",
                "F({'a': [1]})"),
}


@pytest.mark.parametrize("setup,expr", SCRIPT_RAISES.values(), ids=list(SCRIPT_RAISES))
def test_exception_raised_by_the_script_while_encoding_is_a_runtime_error(server, setup, expr):
    script = f"{setup}def main():\n    return {expr}\n"
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert body["error"] == "ValueError: refused by the script", body
    assert 'File "<script>", line 4' in body["traceback"], body
