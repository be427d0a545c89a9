build/release/src/common/reactor.o: src/common/reactor.c \
 src/common/reactor.h src/common/util.h
src/common/reactor.h:
src/common/util.h:
