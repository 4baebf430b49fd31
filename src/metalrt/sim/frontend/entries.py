"""The generated half of a kernel library: one entry trampoline per kernel (host name), the
kernel table the executor reads through msim_library_info_get(), msim_set_current(), and the
tables the checked pointers use for messages.

Each trampoline starts with a #line directive naming the kernel's line, so that a compile error
inside it (an argument the kernel's declared type cannot take) points at the kernel's
declaration in the user's source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .callgraph import Uses
from .diagnostics import GENERATED_FILE
from .rewrite import FunctionConstant, StaticRegion

# builtin attribute -> C++ expression of its value, from the msim_thread `msim_t`
_POSITIONS = {
    "thread_position_in_grid": "msim_t->thread_position_in_grid",
    "thread_position_in_threadgroup": "msim_t->thread_position_in_threadgroup",
    "threadgroup_position_in_grid": "msim_t->threadgroup_position_in_grid",
    "threads_per_threadgroup": "msim_t->threads_per_threadgroup",
    "threadgroups_per_grid": "msim_t->launch->threadgroups_per_grid",
    "threads_per_grid": "msim_t->launch->threads_per_grid",
    "dispatch_threads_per_threadgroup": "msim_t->launch->dispatch_threads_per_threadgroup",
}
_SCALARS = {
    "thread_index_in_threadgroup": "msim_t->thread_index_in_threadgroup",
    "thread_index_in_simdgroup": "msim_t->thread_index_in_simdgroup",
    "simdgroup_index_in_threadgroup": "msim_t->simdgroup_index_in_threadgroup",
    "threads_per_simdgroup": "msim_t->threads_per_simdgroup",
    "thread_execution_width": "msim_t->threads_per_simdgroup",
    "simdgroups_per_threadgroup": "msim_t->simdgroups_per_threadgroup",
    "thread_index_in_quadgroup": "msim_t->thread_index_in_quadgroup",
    "quadgroup_index_in_threadgroup": "msim_t->quadgroup_index_in_threadgroup",
    "quadgroups_per_threadgroup": "msim_t->quadgroups_per_threadgroup",
    "dispatch_simdgroups_per_threadgroup":
        "::msim::dispatch_groups_of(msim_t, MSIM_SIMD_WIDTH)",
    "dispatch_quadgroups_per_threadgroup": "::msim::dispatch_groups_of(msim_t, 4u)",
}

FLAG_NAMES = {
    "barrier": "MSIM_USES_BARRIER",
    "simd": "MSIM_USES_SIMD",
    "threadgroup": "MSIM_USES_THREADGROUP",
    "atomics": "MSIM_USES_ATOMICS",
    "device_atomics": "MSIM_USES_DEVICE_ATOMICS",
}


@dataclass
class ParamInfo:
    name: str
    kind: str  # Buffer | Reference | Value | Builtin | Threadgroup
    builtin: str
    position: int
    condition: str  # [[function_constant(name)]] on the parameter, "" if none


@dataclass
class KernelInfo:
    host_name: str
    function: str
    template_args: list[str]
    line: int
    params: list[ParamInfo]
    scope: tuple[str, ...] = ()
    uses: Uses = field(default_factory=Uses)


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flags_of(uses: Uses) -> list[str]:
    return [FLAG_NAMES[name] for name, on in zip(FLAG_NAMES, uses.astuple()) if on]


class UnsupportedBuiltin(Exception):
    def __init__(self, kernel: KernelInfo, param: ParamInfo):
        super().__init__(f"kernel '{kernel.host_name}': the builtin [[{param.builtin}]] of parameter "
                         f"'{param.name}' is not supported by the sim")
        self.kernel, self.param = kernel, param


def _argument(kernel: KernelInfo, p: ParamInfo, constants: dict[str, FunctionConstant]) -> str:
    pt = f"::msim::param_t<msim_F, {p.position}>"
    if p.condition:
        fc = constants.get(p.condition)
        if fc is None or fc.value in (None, "false"):
            return f"{pt}()"  # the parameter does not exist in this specialisation
    if p.kind in ("Buffer", "Reference", "Value"):
        return f"::msim::buffer_arg<{pt}>(msim_t, {p.position}u, {_c_string(p.name)})"
    if p.kind == "Threadgroup":
        return f"::msim::threadgroup_arg<{pt}>(msim_t, {p.position}u, {_c_string(p.name)})"
    if p.builtin in _POSITIONS:
        return f"::msim::position_arg<{pt}>({_POSITIONS[p.builtin]})"
    if p.builtin in _SCALARS:
        return f"::msim::scalar_arg<{pt}>({_SCALARS[p.builtin]})"
    raise UnsupportedBuiltin(kernel, p)


def generate(kernels: list[KernelInfo], static_regions: list[StaticRegion],
             function_constants: list[FunctionConstant], filename: str) -> str:
    constants = {fc.name: fc for fc in function_constants}
    out = [f'\n#line 1 "{GENERATED_FILE}"\n']

    # Names of kernel parameters by position, for messages about raw-address pointers.
    width = max((len(k.params) for k in kernels), default=0)
    names = []
    for pos in range(width):
        here = sorted({p.name for k in kernels for p in k.params if p.position == pos})
        names.append(_c_string("' or '".join(here)) if here else "nullptr")
    out.append("const char* const msim::param_names[] = {" + ", ".join(names + ["nullptr"]) + "};\n")
    out.append(f"const unsigned msim::param_name_count = {width}u;\n")
    regions = [f"{{&{r.name}, sizeof({r.name}), {_c_string(r.label)}}}" for r in static_regions]
    out.append("const ::msim::static_region msim::static_regions[] = {"
               + ", ".join(regions + ["{nullptr, 0, nullptr}"]) + "};\n")

    for number, k in enumerate(kernels):
        qualified = "::" + "::".join(k.scope + (k.function,))
        if k.template_args:
            qualified += "<" + ", ".join(k.template_args) + ">"
        args = ", ".join(_argument(k, p, constants) for p in sorted(k.params, key=lambda p: p.position))
        out.append(f'#line {k.line} "{filename}"\n')
        out.append(f"extern \"C\" void msim_entry_{number}(msim_thread* msim_t) "
                   f"{{ using msim_F = decltype(&{qualified}); {qualified}({args}); }}\n")

    out.append(f'#line 1 "{GENERATED_FILE}"\n')
    rows = []
    for number, k in enumerate(kernels):
        flags = " | ".join(flags_of(k.uses)) or "0u"
        rows.append(f"{{{_c_string(k.host_name)}, msim_entry_{number}, {flags}, {len(k.params)}u}}")
    out.append("static const msim_kernel_desc msim_kernels[] = {" + ", ".join(rows) + "};\n")
    out.append(f"static const msim_library_info msim_library = {{MSIM_ABI_VERSION, {len(kernels)}u, "
               "msim_kernels};\n")
    out.append('extern "C" __attribute__((visibility("default"))) const msim_library_info* '
               "msim_library_info_get(void) { return &msim_library; }\n")
    out.append('extern "C" __attribute__((visibility("default"))) void '
               "msim_set_current(msim_thread* t) { ::msim::tls_current = t; }\n")
    return "".join(out)
