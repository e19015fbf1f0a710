"""attnc's C API (include/attnc/attnc.h, include/attnc/tensor.h) through ctypes.

    lib = load("build/libattnc.so")
    ctx = Context("cuda")                      # or "cpu", "ref", "cuda:sm_90a"
    prog = ctx.compile_file("spec.attn")       # AttncError with the diagnostics on spec errors
    kern = prog.kernel("llama3_prefill_causal")
    sig = kern.signature(batch, seq_q, seq_k)  # [TensorInfo(name, role, optional, dtype, shape, dim_names)]
    kern.launch(batch, seq_q, seq_k, {"q": q, "k": k, "v": v, "o": o},
                stream=torch.cuda.current_stream().cuda_stream, device_pointers=True)

Tensors are torch tensors (any device; CUDA ones need device_pointers=True), numpy arrays
or View objects. Strides cross the API in elements. numpy has no bfloat16: pass a uint16
array of bf16 bit patterns wrapped as View.of(arr, BF16).

Every failing call raises AttncError carrying the status code and attnc_error.message.
Kernel.bind() builds the view array once and returns a callable that only makes the one
attnc_launch call (what a benchmark times).
"""
import ctypes
import os

# ------------------------------------------------------------------ enums (attnc.h, tensor.h)

F32, F16, BF16, I32, F64 = 0, 1, 2, 3, 4
DTYPE_NAMES = {F32: "f32", F16: "f16", BF16: "bf16", I32: "i32", F64: "f64"}
DTYPE_SIZES = {F32: 4, F16: 2, BF16: 2, I32: 4, F64: 8}
MAX_DIMS = 4
API_VERSION = 1

STATUS_NAMES = [
    "ATTNC_OK", "ATTNC_ERR_INVALID_ARGUMENT", "ATTNC_ERR_UNKNOWN_TARGET", "ATTNC_ERR_TARGET_UNAVAILABLE",
    "ATTNC_ERR_IO", "ATTNC_ERR_SPEC", "ATTNC_ERR_UNKNOWN_KERNEL", "ATTNC_ERR_COMPILE", "ATTNC_ERR_UNSUPPORTED",
    "ATTNC_ERR_UNKNOWN_TENSOR", "ATTNC_ERR_MISSING_TENSOR", "ATTNC_ERR_DTYPE", "ATTNC_ERR_SHAPE",
    "ATTNC_ERR_NULL_POINTER", "ATTNC_ERR_LAYOUT", "ATTNC_ERR_LAUNCH", "ATTNC_ERR_OUT_OF_MEMORY", "ATTNC_ERR_INTERNAL",
]
for _i, _n in enumerate(STATUS_NAMES):
    globals()[_n] = _i
ATTNC_OK, ATTNC_ERR_SPEC = STATUS_NAMES.index("ATTNC_OK"), STATUS_NAMES.index("ATTNC_ERR_SPEC")

ROLE_INPUT, ROLE_OUTPUT = 0, 1
SEVERITY_ERROR, SEVERITY_WARNING, SEVERITY_NOTE = 0, 1, 2

# ------------------------------------------------------------------ structs


class attnc_tensor(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("shape", ctypes.c_int64 * MAX_DIMS),
        ("strides", ctypes.c_int64 * MAX_DIMS),
        ("data", ctypes.c_void_p),
    ]


class attnc_error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 1024)]


class attnc_options(ctypes.Structure):
    _fields_ = [
        ("target", ctypes.c_char_p),
        ("cache_dir", ctypes.c_char_p),
        ("device", ctypes.c_int),
        ("threads", ctypes.c_int),
    ]


class attnc_launch_options(ctypes.Structure):
    _fields_ = [("stream", ctypes.c_void_p), ("device_pointers", ctypes.c_int)]


class attnc_tensor_info(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("role", ctypes.c_int),
        ("optional", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("shape", ctypes.c_int64 * MAX_DIMS),
        ("dim_names", ctypes.c_char_p * MAX_DIMS),
    ]


class attnc_diagnostic(ctypes.Structure):
    _fields_ = [
        ("severity", ctypes.c_int),
        ("file", ctypes.c_char_p),
        ("line", ctypes.c_int), ("col", ctypes.c_int),
        ("end_line", ctypes.c_int), ("end_col", ctypes.c_int),
        ("message", ctypes.c_char_p),
    ]


# ------------------------------------------------------------------ the library

_P = ctypes.c_void_p
_ERR = ctypes.POINTER(attnc_error)
_PROTOTYPES = {
    "attnc_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "attnc_version": (ctypes.c_char_p, []),
    "attnc_options_init": (None, [ctypes.POINTER(attnc_options)]),
    "attnc_context_create": (ctypes.c_int, [ctypes.POINTER(attnc_options), ctypes.POINTER(_P), _ERR]),
    "attnc_context_destroy": (None, [_P]),
    "attnc_context_target": (ctypes.c_char_p, [_P]),
    "attnc_context_cache_dir": (ctypes.c_char_p, [_P]),
    "attnc_compile_string": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                            ctypes.POINTER(_P), _ERR]),
    "attnc_compile_file": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(_P), _ERR]),
    "attnc_program_destroy": (None, [_P]),
    "attnc_program_error_count": (ctypes.c_int, [_P]),
    "attnc_program_diagnostic_count": (ctypes.c_int, [_P]),
    "attnc_program_diagnostic": (ctypes.POINTER(attnc_diagnostic), [_P, ctypes.c_int]),
    "attnc_program_diagnostics_text": (ctypes.c_char_p, [_P]),
    "attnc_program_kernel_count": (ctypes.c_int, [_P]),
    "attnc_program_kernel_name": (ctypes.c_char_p, [_P, ctypes.c_int]),
    "attnc_kernel_get": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(_P), _ERR]),
    "attnc_kernel_name": (ctypes.c_char_p, [_P]),
    "attnc_kernel_is_recurrence": (ctypes.c_int, [_P]),
    "attnc_kernel_signature": (ctypes.c_int, [_P, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                              ctypes.POINTER(attnc_tensor_info), ctypes.c_int,
                                              ctypes.POINTER(ctypes.c_int), _ERR]),
    "attnc_kernel_workspace": (ctypes.c_int, [_P, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                              ctypes.POINTER(ctypes.c_int64), _ERR]),
    "attnc_launch": (ctypes.c_int, [_P, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.POINTER(attnc_tensor), ctypes.c_int,
                                    ctypes.POINTER(attnc_launch_options), _ERR]),
}

_lib = None


def load(path=None):
    """Loads libattnc.so (path, else $ATTNC_LIB, else "libattnc.so" on the loader's path)
    and makes it the library every Context uses. Returns the ctypes.CDLL."""
    global _lib
    path = path or os.environ.get("ATTNC_LIB") or "libattnc.so"
    lib = ctypes.CDLL(os.path.abspath(path) if os.path.exists(path) else path)
    for name, (res, args) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib


def lib():
    if _lib is None:
        load()
    return _lib


def version():
    return lib().attnc_version().decode()


def status_name(code):
    return lib().attnc_status_name(code).decode()


class AttncError(RuntimeError):
    """A failed attnc call: .code (attnc_status), .code_name, .message (attnc_error.message,
    or the diagnostics text for a spec with errors)."""

    def __init__(self, code, message, what=""):
        self.code = code
        self.code_name = STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else "?(%d)" % code
        self.message = message
        super().__init__("%s%s: %s" % (what + ": " if what else "", self.code_name, message))


def _check(status, err, what):
    if status != ATTNC_OK:
        raise AttncError(status, err.message.decode(errors="replace"), what)


def _s(b):
    return None if b is None else b.decode()


# ------------------------------------------------------------------ views


def _torch_dtype_map():
    try:
        import torch
    except ImportError:
        return {}
    return {torch.float32: F32, torch.float16: F16, torch.bfloat16: BF16, torch.int32: I32, torch.float64: F64}


_NUMPY_DTYPES = {"float32": F32, "float16": F16, "int32": I32, "float64": F64}


class View:
    """One attnc_tensor: name, dtype, shape, strides (elements) and a data address. Holds a
    reference to the object that owns the memory."""

    def __init__(self, dtype, shape, strides, data, owner=None, device=None):
        if len(shape) > MAX_DIMS or len(shape) != len(strides):
            raise ValueError("attnc views have at most %d dimensions and one stride per dimension" % MAX_DIMS)
        self.dtype, self.shape, self.strides = dtype, tuple(int(s) for s in shape), tuple(int(s) for s in strides)
        self.data, self.owner, self.device = int(data), owner, device
        numel = 1
        for s in self.shape:
            numel *= s
        # attnc reads all-zero strides as "contiguous": a view whose strides are really all
        # zero (one element broadcast everywhere) cannot be expressed.
        if numel > 1 and all(st == 0 for st in self.strides):
            raise ValueError("a view with every stride 0 and %d elements reads as contiguous to attnc; "
                             "materialize it first" % numel)
        if any(st < 0 for st in self.strides):
            raise ValueError("attnc needs strides >= 0, got %s" % (self.strides,))

    @staticmethod
    def of(obj, dtype=None):
        """A View of a torch tensor or a numpy array (dtype overrides the element type, e.g.
        BF16 for a uint16 array of bf16 bit patterns)."""
        if isinstance(obj, View):
            return obj
        if hasattr(obj, "data_ptr") and hasattr(obj, "stride"):       # torch.Tensor
            dt = dtype if dtype is not None else _torch_dtype_map().get(obj.dtype)
            if dt is None:
                raise TypeError("torch dtype %s has no attnc dtype (bfloat16, float16, float32, int32, float64)"
                                % obj.dtype)
            return View(dt, tuple(obj.shape), tuple(obj.stride()), obj.data_ptr(), obj, obj.device.type)
        if hasattr(obj, "__array_interface__"):                        # numpy
            dt = dtype if dtype is not None else _NUMPY_DTYPES.get(str(obj.dtype))
            if dt is None:
                raise TypeError("numpy dtype %s has no attnc dtype; for bf16 pass a uint16 array with dtype=BF16"
                                % obj.dtype)
            if obj.itemsize != DTYPE_SIZES[dt]:
                raise TypeError("numpy elements of %d bytes for attnc %s" % (obj.itemsize, DTYPE_NAMES[dt]))
            if any(s % obj.itemsize for s in obj.strides):
                raise ValueError("numpy strides %s are not whole elements" % (obj.strides,))
            strides = tuple(s // obj.itemsize for s in obj.strides)
            return View(dt, obj.shape, strides, obj.__array_interface__["data"][0], obj, "cpu")
        raise TypeError("cannot make an attnc view of %r" % type(obj))

    def fill(self, t, name):
        t.name = name.encode()
        t.dtype = self.dtype
        t.ndim = len(self.shape)
        for d in range(MAX_DIMS):
            t.shape[d] = self.shape[d] if d < len(self.shape) else 0
            t.strides[d] = self.strides[d] if d < len(self.strides) else 0
        t.data = self.data or None


class TensorInfo:
    def __init__(self, info):
        self.name = _s(info.name)
        self.role = "output" if info.role == ROLE_OUTPUT else "input"
        self.optional = bool(info.optional)
        self.dtype = info.dtype
        self.ndim = info.ndim
        self.shape = tuple(info.shape[d] for d in range(info.ndim))
        self.dim_names = tuple(_s(info.dim_names[d]) for d in range(info.ndim))

    def __repr__(self):
        return "%s%s %s %s[%s]" % (self.name, "?" if self.optional else "", self.role, DTYPE_NAMES.get(self.dtype, "?"),
                                   ", ".join("%s=%d" % p for p in zip(self.dim_names, self.shape)))


# ------------------------------------------------------------------ handles


class Context:
    def __init__(self, target="cpu", cache_dir=None, device=-1, threads=0):
        L = lib()
        opts = attnc_options()
        L.attnc_options_init(ctypes.byref(opts))
        opts.target = target.encode() if target is not None else None
        if cache_dir is not None:
            opts.cache_dir = cache_dir.encode()
        opts.device = device
        opts.threads = threads
        self._opts_keep = opts
        h = ctypes.c_void_p()
        err = attnc_error()
        _check(L.attnc_context_create(ctypes.byref(opts), ctypes.byref(h), ctypes.byref(err)), err,
               "context '%s'" % target)
        self._h = h
        self._programs = []

    @property
    def handle(self):
        if not self._h:
            raise ValueError("the context is closed")
        return self._h

    @property
    def target(self):
        return _s(lib().attnc_context_target(self.handle))

    @property
    def cache_dir(self):
        return _s(lib().attnc_context_cache_dir(self.handle))

    def _program(self, status, h, err, what):
        if status == ATTNC_ERR_SPEC:
            text = _s(lib().attnc_program_diagnostics_text(h)) if h else ""
            lib().attnc_program_destroy(h)
            raise AttncError(status, text or err.message.decode(errors="replace"), what)
        _check(status, err, what)
        p = Program(self, h)
        self._programs.append(p)
        return p

    def compile_string(self, src, name=None):
        h = ctypes.c_void_p()
        err = attnc_error()
        data = src.encode()
        st = lib().attnc_compile_string(self.handle, data, len(data), name.encode() if name else None,
                                        ctypes.byref(h), ctypes.byref(err))
        return self._program(st, h, err, "compile %s" % (name or "<string>"))

    def compile_file(self, path):
        h = ctypes.c_void_p()
        err = attnc_error()
        st = lib().attnc_compile_file(self.handle, os.fspath(path).encode(), ctypes.byref(h), ctypes.byref(err))
        return self._program(st, h, err, "compile %s" % path)

    def close(self):
        if self._h:
            for p in self._programs:
                p._h = None            # the context destroys them
            lib().attnc_context_destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Program:
    def __init__(self, ctx, h):
        self.ctx, self._h, self._kernels = ctx, h, {}

    @property
    def handle(self):
        if not self._h:
            raise ValueError("the program is destroyed")
        return self._h

    def kernel_names(self):
        L = lib()
        return [_s(L.attnc_program_kernel_name(self.handle, i)) for i in range(L.attnc_program_kernel_count(self.handle))]

    def diagnostics(self):
        L = lib()
        out = []
        for i in range(L.attnc_program_diagnostic_count(self.handle)):
            d = L.attnc_program_diagnostic(self.handle, i).contents
            out.append({"severity": d.severity, "file": _s(d.file), "line": d.line, "col": d.col,
                        "message": _s(d.message)})
        return out

    def diagnostics_text(self):
        return _s(lib().attnc_program_diagnostics_text(self.handle))

    def kernel(self, name):
        """Looks the kernel up; the backend compiles it here (once)."""
        if name in self._kernels:
            return self._kernels[name]
        h = ctypes.c_void_p()
        err = attnc_error()
        _check(lib().attnc_kernel_get(self.handle, name.encode(), ctypes.byref(h), ctypes.byref(err)), err,
               "kernel '%s'" % name)
        k = Kernel(self, h, name)
        self._kernels[name] = k
        return k

    def destroy(self):
        if self._h:
            lib().attnc_program_destroy(self._h)
            self._h = None
            self.ctx._programs.remove(self)


class Kernel:
    def __init__(self, prog, h, name):
        self.prog, self._h, self.name = prog, h, name

    @property
    def handle(self):
        if not self.prog._h:
            raise ValueError("kernel '%s': its program is destroyed" % self.name)
        return self._h

    @property
    def is_recurrence(self):
        return bool(lib().attnc_kernel_is_recurrence(self.handle))

    def signature(self, batch, seq_q, seq_k):
        """The tensors a launch takes: a list of TensorInfo in signature order."""
        n = ctypes.c_int()
        err = attnc_error()
        _check(lib().attnc_kernel_signature(self.handle, batch, seq_q, seq_k, None, 0, ctypes.byref(n),
                                            ctypes.byref(err)), err, "signature of '%s'" % self.name)
        arr = (attnc_tensor_info * max(n.value, 1))()
        _check(lib().attnc_kernel_signature(self.handle, batch, seq_q, seq_k, arr, n.value, ctypes.byref(n),
                                            ctypes.byref(err)), err, "signature of '%s'" % self.name)
        return [TensorInfo(arr[i]) for i in range(n.value)]

    def workspace(self, batch, seq_q, seq_k):
        """Scratch bytes a launch with these lengths takes beyond its tensors."""
        b = ctypes.c_int64()
        err = attnc_error()
        _check(lib().attnc_kernel_workspace(self.handle, batch, seq_q, seq_k, ctypes.byref(b), ctypes.byref(err)), err,
               "workspace of '%s'" % self.name)
        return b.value

    def bind(self, batch, seq_q, seq_k, tensors, stream=None, device_pointers=False):
        """A callable making exactly this launch; the views are built once, here."""
        return BoundLaunch(self, batch, seq_q, seq_k, tensors, stream, device_pointers)

    def launch(self, batch, seq_q, seq_k, tensors, stream=None, device_pointers=False):
        """Runs the kernel on {name: tensor or View}. With a stream, returns once queued."""
        self.bind(batch, seq_q, seq_k, tensors, stream, device_pointers)()


class BoundLaunch:
    def __init__(self, kern, batch, seq_q, seq_k, tensors, stream, device_pointers):
        self.kern = kern
        self.args = (int(batch), int(seq_q), int(seq_k))
        views = [(name, View.of(t)) for name, t in tensors.items()]
        for name, v in views:
            if device_pointers and v.device not in (None, "cuda"):
                raise ValueError("tensor '%s' is on %s, not a CUDA device, but device_pointers is set" % (name, v.device))
            if not device_pointers and v.device not in (None, "cpu"):
                raise ValueError("tensor '%s' is on %s: pass device_pointers=True for device memory" % (name, v.device))
        self.views = views                          # keeps the memory alive
        self.arr = (attnc_tensor * max(len(views), 1))()
        for i, (name, v) in enumerate(views):
            v.fill(self.arr[i], name)
        self.n = len(views)
        if stream is not None or device_pointers:
            self.opts = attnc_launch_options()
            self.opts.stream = int(stream) if stream else None
            self.opts.device_pointers = 1 if device_pointers else 0
            self.popts = ctypes.byref(self.opts)
        else:
            self.opts, self.popts = None, None
        self.err = attnc_error()
        self.perr = ctypes.byref(self.err)
        self._launch = lib().attnc_launch
        self._kh = kern.handle

    def __call__(self):
        st = self._launch(self._kh, self.args[0], self.args[1], self.args[2], self.arr, self.n, self.popts, self.perr)
        if st != 0:
            raise AttncError(st, self.err.message.decode(errors="replace"), "launch '%s'" % self.kern.name)
