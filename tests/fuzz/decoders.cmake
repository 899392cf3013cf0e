# Fuzzing of the decoders beyond the client wire codec (issue 6): peer messages
# (fuzz_peer), what a member reads back from its disk - txns, log records and segments,
# snapshot headers, snapshots (fuzz_records) - zoo.cfg (fuzz_config), the HTTP request heads
# of the metrics page and the AdminServer (fuzz_http), a client's SASL tokens through Cyrus,
# a member's quorum SASL tokens (both roles) and auth reply frames, and the JAAS reader (fuzz_sasl), and Apache ZooKeeper's snapshot and log files as the import
# reads them (fuzz_zkdata; its seeds are files ZooKeeper 3.8 wrote), and the bytes of a
# connection on the TLS client port through the memory-BIO stream (fuzz_tls), and a server's SASL
# tokens through libznode's Cyrus client with the JAAS Client section reader (fuzz_sasl_client).
# Included from tests/fuzz/CMakeLists.txt. As for the codec targets: in every
# build each target's saved corpus replays as a CTest test; with ZN_FUZZ=ON the
# libFuzzer binaries are built from instrumented copies of the sources, and
# tests/fuzz/run.sh runs them for a bounded time.
# Regenerate the seeds with: build/tests/fuzz/gen_decoder_corpus tests/fuzz/corpus

set(ZN_DECODER_FUZZ_LIBS_fuzz_peer zab_core)
set(ZN_DECODER_FUZZ_LIBS_fuzz_records znoded_model zn_store)
set(ZN_DECODER_FUZZ_LIBS_fuzz_config znoded_core)
set(ZN_DECODER_FUZZ_LIBS_fuzz_http znoded_core)
set(ZN_DECODER_FUZZ_LIBS_fuzz_sasl znoded_core)
set(ZN_DECODER_FUZZ_LIBS_fuzz_zkdata znoded_core)
set(ZN_DECODER_FUZZ_LIBS_fuzz_tls znode_tls)
set(ZN_DECODER_FUZZ_LIBS_fuzz_sasl_client znode)

foreach(target fuzz_peer fuzz_records fuzz_config fuzz_http fuzz_sasl fuzz_zkdata fuzz_tls fuzz_sasl_client)
  set(present TRUE)
  foreach(lib ${ZN_DECODER_FUZZ_LIBS_${target}})
    if(NOT TARGET ${lib})
      set(present FALSE)
    endif()
  endforeach()
  if(present AND NOT ZN_FUZZ)
    add_executable(replay_${target} replay_main.c ${target}.c)
    target_link_libraries(replay_${target} PRIVATE ${ZN_DECODER_FUZZ_LIBS_${target}} znode_codec)
    target_include_directories(replay_${target} PRIVATE ${PROJECT_SOURCE_DIR}/daemon ${PROJECT_SOURCE_DIR}/daemon/model
                               ${PROJECT_SOURCE_DIR}/daemon/net ${PROJECT_SOURCE_DIR}/daemon/config
                               ${PROJECT_SOURCE_DIR}/daemon/ops ${PROJECT_SOURCE_DIR}/daemon/offline
                               ${PROJECT_SOURCE_DIR}/daemon/ensemble
                               ${PROJECT_SOURCE_DIR}/replication ${PROJECT_SOURCE_DIR}/replication/core)
    add_test(NAME ${target}_corpus
             COMMAND replay_${target} ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${target})
    set_tests_properties(${target}_corpus PROPERTIES TIMEOUT 300)
  endif()
endforeach()

if(TARGET znoded_model AND TARGET zn_store AND TARGET zab_core AND NOT ZN_FUZZ)
  add_executable(gen_decoder_corpus gen_decoder_corpus.c)
  target_link_libraries(gen_decoder_corpus PRIVATE znoded_model zn_store zab_core znode_codec)
endif()

if(ZN_FUZZ)
  # Instrumented copies of the libraries' own source lists, so a file the library gains
  # joins the fuzz build too.
  function(zn_fuzz_sources_of lib out)
    set(result "")
    if(TARGET ${lib})
      get_target_property(srcs ${lib} SOURCES)
      get_target_property(dir ${lib} SOURCE_DIR)
      foreach(src ${srcs})
        if(IS_ABSOLUTE ${src})
          list(APPEND result ${src})
        else()
          list(APPEND result ${dir}/${src})
        endif()
      endforeach()
    endif()
    set(${out} ${result} PARENT_SCOPE)
  endfunction()
  zn_fuzz_sources_of(zab_core ZN_FUZZ_SOURCES_fuzz_peer)
  zn_fuzz_sources_of(znoded_model ZN_FUZZ_MODEL_SOURCES)
  set(ZN_FUZZ_SOURCES_fuzz_records ${ZN_FUZZ_MODEL_SOURCES}
      ${PROJECT_SOURCE_DIR}/replication/store_format.c ${PROJECT_SOURCE_DIR}/replication/store_wal_format.c
      ${PROJECT_SOURCE_DIR}/replication/store_io.c
      ${PROJECT_SOURCE_DIR}/replication/crc32c.c)
  set(ZN_FUZZ_SOURCES_fuzz_config ${PROJECT_SOURCE_DIR}/daemon/config/config.c
      ${PROJECT_SOURCE_DIR}/daemon/config/config_membership.c ${PROJECT_SOURCE_DIR}/daemon/config/config_keys.c
      ${PROJECT_SOURCE_DIR}/daemon/config/config_tls.c ${PROJECT_SOURCE_DIR}/daemon/config/config_sasl.c ${PROJECT_SOURCE_DIR}/lib/jaas.c)
  set(ZN_FUZZ_SOURCES_fuzz_http ${PROJECT_SOURCE_DIR}/daemon/ops/httpd.c)
  set(ZN_FUZZ_SOURCES_fuzz_sasl ${PROJECT_SOURCE_DIR}/daemon/net/saslauth.c ${PROJECT_SOURCE_DIR}/lib/jaas.c
      ${PROJECT_SOURCE_DIR}/lib/sasl_directives.c ${PROJECT_SOURCE_DIR}/replication/transport_auth.c)
  set(ZN_FUZZ_SOURCES_fuzz_zkdata ${PROJECT_SOURCE_DIR}/daemon/offline/zkdata.c)
  set(ZN_FUZZ_SOURCES_fuzz_tls ${PROJECT_SOURCE_DIR}/lib/tls_stream.c)
  set(ZN_FUZZ_SOURCES_fuzz_sasl_client ${PROJECT_SOURCE_DIR}/lib/client_sasl.c ${PROJECT_SOURCE_DIR}/lib/client_jaas.c
      ${PROJECT_SOURCE_DIR}/lib/jaas.c ${PROJECT_SOURCE_DIR}/lib/sasl_directives.c)
  foreach(target fuzz_peer fuzz_records fuzz_config fuzz_http fuzz_sasl fuzz_zkdata fuzz_tls fuzz_sasl_client)
    add_executable(${target} ${target}.c ${ZN_FUZZ_SOURCES_${target}})
    target_compile_options(${target} PRIVATE ${ZN_FUZZ_FLAGS})
    target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/daemon ${PROJECT_SOURCE_DIR}/daemon/model
                               ${PROJECT_SOURCE_DIR}/daemon/net ${PROJECT_SOURCE_DIR}/daemon/config
                               ${PROJECT_SOURCE_DIR}/daemon/ops ${PROJECT_SOURCE_DIR}/daemon/offline
                               ${PROJECT_SOURCE_DIR}/daemon/ensemble
                               ${PROJECT_SOURCE_DIR}/replication ${PROJECT_SOURCE_DIR}/replication/core)
    target_link_libraries(${target} PRIVATE znode_codec_fuzz)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
  endforeach()
  target_link_libraries(fuzz_http PRIVATE PkgConfig::LIBUV) # the server half of httpd.c
  target_link_libraries(fuzz_sasl PRIVATE PkgConfig::SASL2) # Cyrus, driven by saslauth.c
  target_link_libraries(fuzz_tls PRIVATE OpenSSL::SSL OpenSSL::Crypto) # tls_stream.c's TLS
  target_link_libraries(fuzz_sasl_client PRIVATE PkgConfig::SASL2 Threads::Threads) # Cyrus's client
  find_package(ZLIB REQUIRED)
  find_library(SNAPPY_LIBRARY snappy REQUIRED)
  target_link_libraries(fuzz_zkdata PRIVATE ZLIB::ZLIB ${SNAPPY_LIBRARY}) # compressed snapshots
endif()
