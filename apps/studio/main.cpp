#include <cstdio>
int main(){std::puts("aviary-studio: not implemented yet");return 0;}
