/* pyexecd playground: the examples menu (loaded before app.js, which reads
 * window.PYEXECD_EXAMPLES). */
"use strict";

/* The README's examples, and one per error kind. `inputs` fills the other fields. */
window.PYEXECD_EXAMPLES = [
  {group: "Examples", items: [
    {id: "hello", name: "Hello, World", script:
      'def main():\n    print("Hello, World!")\n    return {"message": "Success"}\n'},
    {id: "sum", name: "Sum and product", script:
      'def main():\n    x = 10\n    y = 20\n    return {"sum": x + y, "product": x * y}\n'},
    {id: "pandas", name: "pandas", script:
      'import pandas as pd\n\n\ndef main():\n    df = pd.DataFrame({"A": [1, 2, 3], "B": [4, 5, 6]})\n' +
      '    return {"mean_A": df["A"].mean(), "sum_B": df["B"].sum()}\n'},
    {id: "numpy", name: "numpy", script:
      'import numpy as np\n\n\ndef main():\n    arr = np.array([1, 2, 3, 4, 5])\n' +
      '    return {"mean": float(np.mean(arr)), "std": float(np.std(arr))}\n'},
    {id: "inputs", name: "stdin, args and kwargs", script:
      'def main(greeting, n=1):\n    name = input()\n    return [greeting + ", " + name] * n\n',
      inputs: {stdin: "Ada\n", args: '["Hello"]', kwargs: '{"n": 2}'}},
    {id: "files", name: "Files in and out (pandas CSV)", script:
      'import pandas as pd\n\n\ndef main():\n    df = pd.read_csv("in/data.csv")\n' +
      '    df.describe().to_csv("summary.csv")\n    return int(df["x"].sum())\n',
      inputs: {files: [{path: "in/data.csv", text: "x,y\n1,2\n3,4\n"}], returnFiles: true}},
    {id: "figure", name: "A figure (matplotlib)", script:
      'import matplotlib.pyplot as plt\n\n\ndef main():\n    plt.plot([1, 2, 3], [2, 4, 1])\n' +
      '    plt.title("A line plot")\n    return "drawn"\n'}
  ]},
  {group: "Errors", items: [
    {id: "syntax", name: "SYNTAX_ERROR", script: "def main(:\n    pass\n"},
    {id: "missing-main", name: "MISSING_MAIN", script: "def some_function():\n    return 1\n"},
    {id: "runtime", name: "RUNTIME_ERROR", script:
      "def main():\n    return 1 / 0\n"},
    {id: "not-json", name: "NOT_JSON_SERIALIZABLE", script:
      "def main():\n    return set([1, 2, 3])\n"},
    {id: "timeout", name: "TIMEOUT", script: "def main():\n    while True:\n        pass\n",
      inputs: {timeout: "1"}},
    {id: "memory", name: "MEMORY_LIMIT", script:
      "def main():\n    return list(range(100000000))\n"},
    {id: "output", name: "OUTPUT_LIMIT", script:
      'def main():\n    while True:\n        print("x" * 1000)\n'},
    {id: "crashed", name: "CRASHED", script:
      "import ctypes\n\n\ndef main():\n    ctypes.string_at(0)\n"}
  ]}
];
