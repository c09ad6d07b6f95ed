# Embeds files into the binary as byte arrays (the web UI, the demo's sample text), so one
# tpro binary runs anywhere without its source tree.
#   tpro_embed(<target> <base_dir> <files...>)  adds a generated .cpp to <target> defining
#   tpro::embedded_files(): {relative path, bytes} for each file.
function(tpro_embed target base_dir)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}_embedded.cpp)
  set(abs_files)
  foreach(f ${ARGN})
    list(APPEND abs_files ${base_dir}/${f})
  endforeach()
  # A ';' in a custom command's argument would split it into several; pass the list '|'-joined.
  string(REPLACE ";" "|" files_arg "${ARGN}")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DBASE=${base_dir} "-DFILES=${files_arg}" -P ${PROJECT_SOURCE_DIR}/cmake/embed_gen.cmake
    DEPENDS ${abs_files} ${PROJECT_SOURCE_DIR}/cmake/embed_gen.cmake
    COMMENT "Embedding ${target} assets"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
