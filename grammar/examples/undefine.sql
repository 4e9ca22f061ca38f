UNDEFINE sensor;
