/* The C twin of hits.py: a Hyperscan database and a bounded scan, hits collected in C.
 *
 * hits.py is the reference (its docstring says what a scan returns); this file links the
 * Hyperscan library (libhs) and collects hits in a C array, where the hyperscan package
 * calls a Python function per hit. tools/native.py builds it next to the compiled modules,
 * and it is used in place of hits.py only while it was built from the sources as they
 * are (gatewayd/compiled.py). tests/dlp/test_hits.py compares the two.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <hs/hs.h>

/* Scans of this many bytes or more let other threads run meanwhile; shorter ones (a
 * window around a cue) would spend more on the hand-over than they give. */
#define RELEASE_GIL_FROM (16 * 1024)

static PyObject *PatternError;

typedef struct {
    PyObject_HEAD
    hs_database_t *db;
    hs_scratch_t *scratch;
} Database;

typedef struct {
    unsigned int id;
    unsigned long long start, end;
} Hit;

typedef struct {
    Hit *hits;
    Py_ssize_t count, capacity, limit;
    int out_of_memory;
} Collected;

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int Py_UNUSED(flags), void *context)
{
    Collected *c = context;
    if (c->count == c->capacity) {
        Py_ssize_t capacity = c->capacity ? 2 * c->capacity : 64;
        Hit *grown = realloc(c->hits, (size_t)capacity * sizeof(Hit));
        if (grown == NULL) {
            c->out_of_memory = 1;
            return 1;
        }
        c->hits = grown;
        c->capacity = capacity;
    }
    c->hits[c->count].id = id;
    c->hits[c->count].start = from;
    c->hits[c->count].end = to;
    c->count++;
    return c->count >= c->limit;
}

/* (id, start, end) with the offsets made absolute, built item by item: Py_BuildValue would
 * parse its format string again for every hit. NULL with an exception set. */
static PyObject *hit_tuple(const Hit *hit, Py_ssize_t lo)
{
    PyObject *tuple = PyTuple_New(3);
    if (tuple == NULL)
        return NULL;
    PyObject *item = PyLong_FromUnsignedLong(hit->id);
    if (item == NULL)
        goto fail;
    PyTuple_SET_ITEM(tuple, 0, item);
    if ((item = PyLong_FromSsize_t((Py_ssize_t)hit->start + lo)) == NULL)
        goto fail;
    PyTuple_SET_ITEM(tuple, 1, item);
    if ((item = PyLong_FromSsize_t((Py_ssize_t)hit->end + lo)) == NULL)
        goto fail;
    PyTuple_SET_ITEM(tuple, 2, item);
    return tuple;
fail:
    Py_DECREF(tuple);
    return NULL;
}

static void Database_dealloc(Database *self)
{
    hs_free_scratch(self->scratch);
    hs_free_database(self->db);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The patterns of a sequence of bytes, as C strings (NUL bytes are refused: Hyperscan's
 * expressions are C strings). 0, or -1 with an exception set. */
static int expressions_of(PyObject *seq, Py_ssize_t n, const char **out)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "an expression is bytes");
            return -1;
        }
        if ((Py_ssize_t)strlen(PyBytes_AS_STRING(item)) != PyBytes_GET_SIZE(item)) {
            PyErr_SetString(PatternError, "an expression holds a NUL byte");
            return -1;
        }
        out[i] = PyBytes_AS_STRING(item);
    }
    return 0;
}

static PyObject *Database_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"expressions", "flags", NULL};
    PyObject *expressions, *flags;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:Database", keywords, &expressions,
                                     &flags))
        return NULL;
    PyObject *exprs = PySequence_Fast(expressions, "expressions is a sequence of bytes");
    if (exprs == NULL)
        return NULL;
    PyObject *flagseq = PySequence_Fast(flags, "flags is a sequence of ints");
    if (flagseq == NULL) {
        Py_DECREF(exprs);
        return NULL;
    }
    Database *self = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(exprs);
    const char **strings = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    unsigned int *ids = PyMem_Calloc((size_t)n + 1, sizeof(unsigned int));
    unsigned int *bits = PyMem_Calloc((size_t)n + 1, sizeof(unsigned int));
    if (strings == NULL || ids == NULL || bits == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (PySequence_Fast_GET_SIZE(flagseq) != n) {
        PyErr_SetString(PyExc_ValueError, "one flags value per expression");
        goto done;
    }
    if (expressions_of(exprs, n, strings) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long value = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(flagseq, i));
        if (value == (unsigned long)-1 && PyErr_Occurred())
            goto done;
        bits[i] = (unsigned int)value;
        ids[i] = (unsigned int)i;
    }
    hs_database_t *db = NULL;
    hs_compile_error_t *error = NULL;
    hs_error_t err;
    Py_BEGIN_ALLOW_THREADS
    err = hs_compile_multi(strings, bits, ids, (unsigned int)n, HS_MODE_BLOCK, NULL, &db,
                           &error);
    Py_END_ALLOW_THREADS
    if (err != HS_SUCCESS) {
        PyErr_SetString(PatternError, error != NULL ? error->message : "refused");
        hs_free_compile_error(error);
        goto done;
    }
    hs_scratch_t *scratch = NULL;
    if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
        hs_free_database(db);
        PyErr_NoMemory();
        goto done;
    }
    self = (Database *)type->tp_alloc(type, 0);
    if (self == NULL) {
        hs_free_scratch(scratch);
        hs_free_database(db);
        goto done;
    }
    self->db = db;
    self->scratch = scratch;
done:
    PyMem_Free(strings);
    PyMem_Free(ids);
    PyMem_Free(bits);
    Py_DECREF(exprs);
    Py_DECREF(flagseq);
    return (PyObject *)self;
}

static PyObject *Database_scan(Database *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "scan(buf, lo, hi, limit)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t lo, hi, limit;
    if ((lo = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
        goto done;
    if ((hi = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred())
        goto done;
    if ((limit = PyNumber_AsSsize_t(args[3], NULL)) == -1 && PyErr_Occurred())
        goto done;
    /* The slice buf[lo:hi], as Python would take it. */
    if (lo < 0)
        lo = lo + view.len < 0 ? 0 : lo + view.len;
    if (hi < 0)
        hi = hi + view.len < 0 ? 0 : hi + view.len;
    if (lo > view.len)
        lo = view.len;
    if (hi > view.len)
        hi = view.len;
    if (hi < lo)
        hi = lo;
    Collected c = {NULL, 0, 0, limit, 0};
    hs_error_t err = HS_SUCCESS;
    if (limit > 0 && hi - lo > UINT_MAX) {
        PyErr_SetString(PyExc_ValueError, "a scan covers at most 4 GiB");
        goto done;
    }
    if (limit > 0) {
        const char *data = (const char *)view.buf + lo;
        unsigned int length = (unsigned int)(hi - lo);
        if (length >= RELEASE_GIL_FROM) {
            Py_BEGIN_ALLOW_THREADS
            err = hs_scan(self->db, data, length, 0, self->scratch, on_match, &c);
            Py_END_ALLOW_THREADS
        } else {
            err = hs_scan(self->db, data, length, 0, self->scratch, on_match, &c);
        }
    }
    if (c.out_of_memory) {
        PyErr_NoMemory();
        goto freed;
    }
    if (err != HS_SUCCESS && err != HS_SCAN_TERMINATED) {
        PyErr_Format(PyExc_RuntimeError, "the pattern engine failed a scan (error %d)",
                     (int)err);
        goto freed;
    }
    PyObject *hits = PyList_New(c.count);
    if (hits == NULL)
        goto freed;
    for (Py_ssize_t i = 0; i < c.count; i++) {
        PyObject *hit = hit_tuple(&c.hits[i], lo);
        if (hit == NULL) {
            Py_DECREF(hits);
            goto freed;
        }
        PyList_SET_ITEM(hits, i, hit);
    }
    result = Py_BuildValue("(NO)", hits, limit > 0 && err == HS_SUCCESS ? Py_True : Py_False);
freed:
    free(c.hits);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef Database_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Database_scan, METH_FASTCALL,
     "scan(buf, lo, hi, limit) -> (hits, complete): see hits.py"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DatabaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gatewayd.dlp.hits.Database",
    .tp_basicsize = sizeof(Database),
    .tp_dealloc = (destructor)Database_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Database(expressions, flags): one Hyperscan block-mode database and its "
              "scratch space (see hits.py).",
    .tp_methods = Database_methods,
    .tp_new = Database_new,
};

static struct PyModuleDef hits_module = {
    PyModuleDef_HEAD_INIT, "hits",
    "Pattern hits: one Hyperscan block-mode database and a bounded scan (hits.py's C twin).",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_hits(void)
{
    if (PyType_Ready(&DatabaseType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&hits_module);
    if (module == NULL)
        return NULL;
    /* Hit, as hits.py defines it: tuple[int, int, int] (imported for annotations). */
    PyObject *ints = PyTuple_Pack(3, &PyLong_Type, &PyLong_Type, &PyLong_Type);
    PyObject *hit = ints == NULL ? NULL : Py_GenericAlias((PyObject *)&PyTuple_Type, ints);
    Py_XDECREF(ints);
    if (hit == NULL || PyModule_AddObject(module, "Hit", hit) < 0) {
        Py_XDECREF(hit);
        Py_DECREF(module);
        return NULL;
    }
    PatternError = PyErr_NewExceptionWithDoc(
        "gatewayd.dlp.hits.PatternError",
        "Hyperscan refused the patterns; the message is its reason.", NULL, NULL);
    if (PatternError == NULL
        || PyModule_AddObjectRef(module, "PatternError", PatternError) < 0
        || PyModule_AddObjectRef(module, "Database", (PyObject *)&DatabaseType) < 0
        || PyModule_AddIntConstant(module, "CASELESS", HS_FLAG_CASELESS) < 0
        || PyModule_AddIntConstant(module, "SOM_LEFTMOST", HS_FLAG_SOM_LEFTMOST) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
