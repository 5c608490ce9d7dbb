/* The C twin of entropy.py: shannon, the same float for every input, bit for bit.
 *
 * entropy.py is the reference. The terms are the same (k * log2(k) per character count,
 * from the C library's log2, which Python's math.log2 also calls), added in the same
 * order (by byte value: the order of the runs of the sorted bytes there), and the last
 * step is the same (log2(n) - total / n). tools/native.py builds this next to the
 * compiled modules; tests/dlp/test_entropy.py compares the two.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define MAX_LENGTH 4096

static double k_log_k[MAX_LENGTH + 1];

static PyObject *shannon(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_ssize_t n = view.len;
    double bits = 0.0;
    if (n > 0 && n <= MAX_LENGTH) {
        unsigned int counts[256] = {0};
        const unsigned char *data = view.buf;
        for (Py_ssize_t i = 0; i < n; i++)
            counts[data[i]]++;
        double total = 0.0;
        for (int c = 0; c < 256; c++)
            if (counts[c])
                total += k_log_k[counts[c]];
        bits = log2((double)n) - total / (double)n;
    }
    PyBuffer_Release(&view);
    return PyFloat_FromDouble(bits);
}

static PyMethodDef entropy_methods[] = {
    {"shannon", shannon, METH_O,
     "shannon(data) -> bits per character (see entropy.py)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef entropy_module = {
    PyModuleDef_HEAD_INIT, "entropy",
    "Shannon entropy of a byte string (entropy.py's C twin).",
    -1, entropy_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_entropy(void)
{
    k_log_k[0] = 0.0;
    for (int k = 1; k <= MAX_LENGTH; k++)
        k_log_k[k] = (double)k * log2((double)k);
    PyObject *module = PyModule_Create(&entropy_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "MAX_LENGTH", MAX_LENGTH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
