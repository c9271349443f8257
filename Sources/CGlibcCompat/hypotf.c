// Amazon Linux 2023 (provided.al2023) has glibc 2.34. Built on Debian 12 (glibc 2.36), the static
// Swift runtime's call to hypotf binds to hypotf@GLIBC_2.35, the default version there, and the
// binary would not load on Lambda. Defining hypotf here captures that reference at link time and
// forwards it to the implementation every glibc since 2.2.5 exports (GLIBC_2.35 only dropped the
// SVID error-handling wrapper, which new binaries never used). packaging/check-glibc.sh proves
// that nothing above GLIBC_2.34 is left. Hidden: it serves this binary's own references and does
// not interpose libm for the shared libraries loaded beside it.
float rotator_hypotf_glibc_2_2_5(float x, float y);
__asm__(".symver rotator_hypotf_glibc_2_2_5, hypotf@GLIBC_2.2.5");

__attribute__((visibility("hidden"))) float hypotf(float x, float y) {
    return rotator_hypotf_glibc_2_2_5(x, y);
}
