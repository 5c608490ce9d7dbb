/* The C twin of runs.py: encoded_runs, the same result for every input.
 *
 * runs.py is the reference (its docstring says what a run is); this file does the same
 * byte work in one pass over the buffer instead of translations and searches over Python
 * objects. tools/native.py builds it next to the compiled modules, and it is used in
 * place of runs.py only while it was built from the sources as they are
 * (gatewayd/compiled.py). tests/dlp/test_runs.py compares the two.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MIN_RUN 16

static unsigned char run_char[256];   /* base64, both alphabets */
static unsigned char url_char[256];   /* what a URL-encoded run is made of */
static unsigned char hex_char[256];
static unsigned char ident_char[256]; /* a plain lower_case word */
static unsigned char text_lead[256];  /* the high digit of hex of ASCII text */

static PyObject *name_base64, *name_hex, *name_url;

static void mark(unsigned char *table, const char *chars)
{
    for (; *chars; chars++)
        table[(unsigned char)*chars] = 1;
}

static void init_tables(void)
{
    static const char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    mark(run_char, alnum);
    mark(run_char, "+/_-");
    mark(url_char, alnum);
    mark(url_char, "._~!$&'()*+,;=:@/?%-");
    mark(hex_char, "0123456789abcdefABCDEF");
    mark(ident_char, "abcdefghijklmnopqrstuvwxyz_-");
    mark(text_lead, "234567");
}

/* Add (start, end, encoding) to found unless covered(start, end) says a match has it.
 * 0 on success, -1 with an exception set. */
static int add_run(PyObject *found, PyObject *covered, Py_ssize_t start, Py_ssize_t end,
                   PyObject *encoding)
{
    if (covered != Py_None) {
        PyObject *said = PyObject_CallFunction(covered, "nn", start, end);
        if (said == NULL)
            return -1;
        int truth = PyObject_IsTrue(said);
        Py_DECREF(said);
        if (truth < 0)
            return -1;
        if (truth)
            return 0;
    }
    PyObject *run = Py_BuildValue("(nnO)", start, end, encoding);
    if (run == NULL)
        return -1;
    int failed = PyList_Append(found, run);
    Py_DECREF(run);
    return failed;
}

/* The base64 or hex reading of buf[start:end], or NULL if it is not a run. */
static PyObject *encoding_of(const unsigned char *buf, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t k;
    for (k = start; k < end && ident_char[buf[k]]; k++)
        ;
    if (k == end)
        return NULL; /* a plain lower_case word */
    if ((end - start) % 2)
        return name_base64;
    for (k = start; k < end && hex_char[buf[k]]; k++)
        ;
    if (k < end)
        return name_base64;
    for (k = start; k < end; k += 2)
        if (!text_lead[buf[k]])
            return NULL; /* hex, but not of ASCII text */
    return name_hex;
}

static int is_escape(const unsigned char *buf, Py_ssize_t size, Py_ssize_t i)
{
    return buf[i] == '%' && i + 2 < size && hex_char[buf[i + 1]] && hex_char[buf[i + 2]];
}

static PyObject *runs_of(const unsigned char *buf, Py_ssize_t size, Py_ssize_t limit,
                         PyObject *covered)
{
    PyObject *found = PyList_New(0);
    if (found == NULL)
        return NULL;
    Py_ssize_t count = 0;
    Py_ssize_t pos = 0;
    for (;;) {
        /* The next maximal run of MIN_RUN or more run characters at or after pos (the
         * character before pos never is one: pos follows a run's end or its padding).
         * The length of the run so far is kept without a branch per byte: the branch a
         * word boundary takes is what costs, in prose. */
        Py_ssize_t k, length = 0;
        for (k = pos; k < size; k++) {
            length = (length + 1) & -(Py_ssize_t)run_char[buf[k]];
            if (length == MIN_RUN)
                break;
        }
        if (k >= size)
            break;
        Py_ssize_t start = k + 1 - MIN_RUN, end = k + 1;
        while (end < size && run_char[buf[end]])
            end++;
        if (count >= limit)
            goto bounded;
        if (end < size && buf[end] == '=') /* padding, at most two */
            end += (end + 1 < size && buf[end + 1] == '=') ? 2 : 1;
        pos = end;
        PyObject *encoding = encoding_of(buf, start, end);
        if (encoding == NULL)
            continue;
        count++;
        if (add_run(found, covered, start, end, encoding) < 0)
            goto error;
    }
    pos = 0;
    for (;;) {
        const unsigned char *at = memchr(buf + pos, '%', (size_t)(size - pos));
        while (at != NULL && !is_escape(buf, size, at - buf))
            at = memchr(at + 1, '%', (size_t)(size - (at + 1 - buf)));
        if (at == NULL)
            break;
        Py_ssize_t i = at - buf;
        if (count >= limit)
            goto bounded;
        Py_ssize_t start = i, end = i;
        while (start > 0 && url_char[buf[start - 1]])
            start--;
        while (end < size && url_char[buf[end]])
            end++;
        count++;
        if (add_run(found, covered, start, end, name_url) < 0)
            goto error;
        pos = end;
    }
    return Py_BuildValue("(NO)", found, Py_True);
bounded:
    return Py_BuildValue("(NO)", found, Py_False);
error:
    Py_DECREF(found);
    return NULL;
}

PyDoc_STRVAR(encoded_runs_doc,
"encoded_runs(buf, *, limit, covered=None)\n--\n\n"
"Candidate runs in buf, in order, at most limit, less those covered(start, end) says\n"
"overlap a match; and whether every run was looked at (see runs.py).");

static PyObject *encoded_runs(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buf", "limit", "covered", NULL};
    Py_buffer view;
    PyObject *bound = NULL, *covered = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$OO:encoded_runs", keywords, &view,
                                     &bound, &covered))
        return NULL;
    if (bound == NULL) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError,
                        "encoded_runs() missing required keyword-only argument: 'limit'");
        return NULL;
    }
    Py_ssize_t limit = PyNumber_AsSsize_t(bound, NULL); /* clamped, as a bound */
    if (limit == -1 && PyErr_Occurred()) {
        PyBuffer_Release(&view);
        return NULL;
    }
    PyObject *result = runs_of(view.buf, view.len, limit, covered);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef runs_methods[] = {
    {"encoded_runs", (PyCFunction)(void (*)(void))encoded_runs, METH_VARARGS | METH_KEYWORDS,
     encoded_runs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef runs_module = {
    PyModuleDef_HEAD_INIT, "runs",
    "Encoded runs: where a buffer may carry base64, hex or URL-encoded text (runs.py's C "
    "twin).",
    -1, runs_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_runs(void)
{
    init_tables();
    name_base64 = PyUnicode_InternFromString("base64");
    name_hex = PyUnicode_InternFromString("hex");
    name_url = PyUnicode_InternFromString("url");
    if (name_base64 == NULL || name_hex == NULL || name_url == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&runs_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "MIN_RUN", MIN_RUN) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
