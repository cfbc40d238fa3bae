# Install rules: `cmake --install <build> --prefix <p>` puts under <p>
#   lib/librecur.so*, lib/librecur.a                 the library, shared and static
#   include/recur/recur.h, recur.hpp                 the public headers (and what they include:
#   include/recur/runtime/, include/recur/formats/   runtime/recur.h, runtime/recur.hpp, formats/status.h)
#   lib/cmake/recur/                                 find_package(recur): recur::recur (shared),
#                                                    recur::recur_static
#   lib/pkgconfig/recur.pc                           pkg-config: -lrecur (static: --static)
# All in the component "recur". Included from runtime/CMakeLists.txt, where the targets live.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RECUR_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/recur)

install(TARGETS recur_shared recur_static EXPORT recurTargets COMPONENT recur
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/runtime/recur.h ${PROJECT_SOURCE_DIR}/runtime/recur.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/recur/runtime COMPONENT recur)
install(FILES ${PROJECT_SOURCE_DIR}/formats/status.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/recur/formats COMPONENT recur)
# <recur.h> and <recur.hpp> at the top of the include directory.
install(FILES ${PROJECT_SOURCE_DIR}/cmake/recur.h ${PROJECT_SOURCE_DIR}/cmake/recur.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/recur COMPONENT recur)

install(EXPORT recurTargets NAMESPACE recur:: DESTINATION ${RECUR_INSTALL_CMAKEDIR}
  FILE recurTargets.cmake COMPONENT recur)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/recurConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/recurConfig.cmake INSTALL_DESTINATION ${RECUR_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/recurConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/recurConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/recurConfigVersion.cmake
  DESTINATION ${RECUR_INSTALL_CMAKEDIR} COMPONENT recur)

file(RELATIVE_PATH RECUR_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${PROJECT_SOURCE_DIR}/cmake/recur.pc.in ${PROJECT_BINARY_DIR}/cmake/recur.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/recur.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT recur)
