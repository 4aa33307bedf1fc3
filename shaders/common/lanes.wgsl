// Value types of kernels that handle four consecutive values per invocation under the VEC4 flag
// and one otherwise: V stores T values, F is the f32 they are computed in, VALUES_PER_ITEM counts.
#if VEC4
alias V = vec4<T>;
alias F = vec4<f32>;
const VALUES_PER_ITEM: u32 = 4u;
#else
alias V = T;
alias F = f32;
const VALUES_PER_ITEM: u32 = 1u;
#endif
