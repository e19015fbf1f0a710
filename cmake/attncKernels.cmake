# attnc_add_kernels(<target> <spec.attn>... TARGETS <cpu|cuda|cuda:sm_XX>...
#                   [KERNELS <name>...] [OUTPUT_DIR <dir>])
#
# Runs `attnc build` at build time for every kernel of every spec (or only the KERNELS
# named) and each attnc target, and adds the results to <target>:
#   cpu          <dir>/cpu/NAME.o, linked into <target>, and <dir>/cpu/NAME.h
#   cuda:sm_XX   <dir>/cuda_sm_XX/NAME.cubin and NAME.h, for cuModuleLoad at run time
#                ("cuda" alone builds for sm_80, as `attnc build` does)
# <dir> (default ${CMAKE_CURRENT_BINARY_DIR}/attnc_kernels/<target>) is on <target>'s
# include path, so sources write #include "cpu/NAME.h", and <target> gets the macro
# ATTNC_KERNELS_DIR="<dir>" to find CUBINs. Editing a spec rebuilds its kernels; the
# kernel names are read from the specs when CMake runs, and a spec edit re-runs CMake so
# added or renamed kernels are picked up. Relative spec paths are taken from
# ${CMAKE_CURRENT_SOURCE_DIR}. The generator is attnc::cli.
function(attnc_add_kernels target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "OUTPUT_DIR" "TARGETS;KERNELS")
  set(specs ${ARG_UNPARSED_ARGUMENTS})
  if(NOT TARGET ${target})
    message(FATAL_ERROR "attnc_add_kernels: '${target}' is not a target; call it after add_executable/add_library")
  endif()
  if(NOT specs)
    message(FATAL_ERROR "attnc_add_kernels(${target} ...): no spec files; usage: "
                        "attnc_add_kernels(${target} spec.attn... TARGETS cpu cuda:sm_90a)")
  endif()
  if(NOT ARG_TARGETS)
    message(FATAL_ERROR "attnc_add_kernels(${target} ...): no TARGETS; name cpu and/or cuda:sm_XX")
  endif()
  if(NOT TARGET attnc::cli)
    message(FATAL_ERROR "attnc_add_kernels: the attnc::cli target is missing; find_package(attnc) first")
  endif()
  set(root ${ARG_OUTPUT_DIR})
  if(NOT root)
    set(root ${CMAKE_CURRENT_BINARY_DIR}/attnc_kernels/${target})
  endif()

  set(found_kernels)
  set(link_libm OFF)
  foreach(spec ${specs})
    get_filename_component(spec ${spec} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    if(NOT EXISTS ${spec})
      message(FATAL_ERROR "attnc_add_kernels(${target} ...): no spec file ${spec}")
    endif()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${spec})
    file(READ ${spec} text)
    # `kernel NAME` at the start of a line (comments start with #, so they never match)
    string(REGEX MATCHALL "(^|\n)[ \t]*kernel[ \t]+[A-Za-z_][A-Za-z0-9_]*" decls "${text}")
    set(kernels)
    foreach(decl ${decls})
      string(REGEX REPLACE ".*kernel[ \t]+" "" name "${decl}")
      if(NOT ARG_KERNELS OR name IN_LIST ARG_KERNELS)
        list(APPEND kernels ${name})
      endif()
    endforeach()
    if(NOT kernels)
      message(FATAL_ERROR "attnc_add_kernels(${target} ...): found no kernel to build in ${spec} "
                          "(KERNELS: '${ARG_KERNELS}'); a declaration `kernel NAME {` starts a line")
    endif()
    list(APPEND found_kernels ${kernels})

    foreach(kt ${ARG_TARGETS})
      if(kt STREQUAL "cpu")
        set(sub cpu)
        set(exts .o .h)
        set(link_libm ON)
      elseif(kt MATCHES "^cuda(:sm_[0-9]+a?)?$")
        string(REPLACE ":" "_" sub ${kt})
        set(exts .cubin .h)
      else()
        message(FATAL_ERROR "attnc_add_kernels(${target} ...): unknown target '${kt}'; use cpu, cuda or "
                            "cuda:sm_XX (e.g. cuda:sm_80, cuda:sm_90a)")
      endif()
      foreach(k ${kernels})
        set(outs)
        foreach(ext ${exts})
          list(APPEND outs ${root}/${sub}/${k}${ext})
        endforeach()
        add_custom_command(
          OUTPUT ${outs}
          COMMAND ${CMAKE_COMMAND} -E make_directory ${root}/${sub}
          COMMAND attnc::cli build --target ${kt} ${spec} --kernel ${k} -o ${root}/${sub}
          DEPENDS ${spec} $<TARGET_FILE:attnc::cli>
          COMMENT "attnc build --target ${kt}: kernel ${k} of ${spec}"
          VERBATIM)
        foreach(out ${outs})
          if(out MATCHES "\\.o$")
            set_source_files_properties(${out} PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
          else()
            set_source_files_properties(${out} PROPERTIES HEADER_FILE_ONLY TRUE GENERATED TRUE)
          endif()
        endforeach()
        target_sources(${target} PRIVATE ${outs})
      endforeach()
    endforeach()
  endforeach()

  foreach(k ${ARG_KERNELS})
    if(NOT k IN_LIST found_kernels)
      message(FATAL_ERROR "attnc_add_kernels(${target} ...): KERNELS names '${k}', which no spec declares")
    endif()
  endforeach()
  target_include_directories(${target} PRIVATE ${root})
  target_compile_definitions(${target} PRIVATE ATTNC_KERNELS_DIR="${root}")
  if(link_libm)
    # generated CPU objects call libm (exp, ...) and nothing else of attnc
    target_link_libraries(${target} PRIVATE m)
  endif()
endfunction()
